"""hl7-fhir-rest: POST the partner's view of a referral, as a FHIR transaction, to its FHIR base.

https://hl7.org/fhir/R4/http.html#transaction — the Bundle goes to ``[base]`` itself. Every entry is a
conditional create (https://hl7.org/fhir/R4/http.html#ccreate) keyed by the hub's own identifier
(``hub-resource`` ``<Type>/<id>``), so a redelivery (delivery is at least once) finds what the first
one made instead of making a duplicate. With ``smart`` configured, the request carries a SMART Backend
Services bearer token (``adapters/_smart.py``).

Notices without a Bundle (consent withdrawn or expired) go as a one-entry transaction creating a
``Communication`` that points at the hub's Task and says what happened — ids only, no clinical detail.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, field_validator

from adapters import _http
from adapters._smart import TOKENS, SmartClientConfig
from adapters.base import (
    HL7_CONNECTION_TYPE,
    ConnectionType,
    Delivery,
    MisconfiguredError,
    PermanentError,
    Receipt,
    RetryableError,
    Transport,
)

FHIR_JSON = "application/fhir+json"
HUB_IDENTIFIER = "https://wraparound.org.uk/fhir/sid/hub-resource"  # value "<Type>/<hub id>"
DELIVERY_IDENTIFIER = "https://wraparound.org.uk/fhir/sid/delivery"  # value: the delivery's message id
# R4 types whose identifier is 0..1 (an object, not a list).
_SINGLE_IDENTIFIER = frozenset({"QuestionnaireResponse", "Bundle", "Composition"})
# Requests that are safe to repeat as they stand (a conditional POST is checked separately).
_IDEMPOTENT = frozenset({"PUT", "PATCH", "DELETE", "GET", "HEAD"})
_NOTICE_TEXT = {
    "referral.created": "A referral is waiting at the hub.",
    "task.updated": "The referral's Task has changed at the hub.",
    "consent.withdrawn": "Consent for this referral has been withdrawn.",
    "consent.expired": "Consent for this referral has expired.",
}
# Optional elements (0..* or 0..1 in R4) a partner may decline. Identifiers, references, status and
# anything a profile requires are never on the list: the conditional creates and the workflow use them.
DROPPABLE = frozenset(
    {
        "Patient.telecom",
        "Patient.address",
        "Patient.birthDate",
        "Patient.gender",
        "Patient.contact",
        "Patient.photo",
        "ServiceRequest.note",
        "Task.note",
    }
)
# Headers the adapter owns; an Endpoint.header line may not replace them.
_OWN_HEADERS = frozenset({"content-type", "accept", "content-length", "host", "transfer-encoding", "prefer"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 header field name


def _hub_key(resource: dict[str, Any], index: int) -> tuple[str, str]:
    """The identifier a conditional create matches on, adding the hub's when the resource lacks it."""
    rtype = resource["resourceType"]
    current = resource.get("identifier")
    if rtype in _SINGLE_IDENTIFIER and isinstance(current, dict):
        system, value = current.get("system"), current.get("value")
        if isinstance(system, str) and isinstance(value, str) and system and value:
            return system, value  # room for one identifier only: key on the one it has
    listed = current if isinstance(current, list) else []
    for ident in listed:
        if isinstance(ident, dict) and ident.get("system") == HUB_IDENTIFIER and ident.get("value"):
            return HUB_IDENTIFIER, str(ident["value"])
    rid = resource.get("id")
    if not isinstance(rid, str) or not rid:
        raise PermanentError(f"bundle entry {index} has neither a hub identifier nor an id")
    hub = {"system": HUB_IDENTIFIER, "value": f"{rtype}/{rid}"}
    resource["identifier"] = hub if rtype in _SINGLE_IDENTIFIER else [*listed, hub]
    return HUB_IDENTIFIER, hub["value"]


def _conditional_creates(bundle: dict[str, Any]) -> None:
    """Make every entry safe to deliver twice (the hub's builder should already have done so)."""
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if not isinstance(resource.get("resourceType"), str):
            raise PermanentError(f"bundle entry {index} has no resourceType")
        system, value = _hub_key(resource, index)
        request = entry.get("request")
        if isinstance(request, dict):
            method = request.get("method")
            if method in _IDEMPOTENT or (method == "POST" and request.get("ifNoneExist")):
                continue
        entry["request"] = {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={quote(system, safe=':/')}|{quote(value, safe=':/')}",
        }


def _drop_elements(bundle: dict[str, Any], paths: list[str]) -> None:
    drops: dict[str, list[str]] = {}
    for path in paths:
        rtype, element = path.split(".", 1)
        drops.setdefault(rtype, []).append(element)
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        # Contained resources too: a Patient can ride inside a ServiceRequest.
        contained = resource.get("contained")
        for item in [resource, *(contained if isinstance(contained, list) else [])]:
            if isinstance(item, dict):
                for element in drops.get(str(item.get("resourceType")), []):
                    item.pop(element, None)
                    item.pop(f"_{element}", None)  # its extensions and id (R4 JSON primitives)


def _notice_bundle(delivery: Delivery) -> dict[str, Any]:
    """A notice (no Bundle from the hub) as a Communication about the hub's Task: ids only."""
    communication = {
        "resourceType": "Communication",
        "identifier": [{"system": DELIVERY_IDENTIFIER, "value": delivery.message_id}],
        "status": "completed",
        "category": [{"text": delivery.event}],
        "about": [{"reference": delivery.task_url}],
        "sent": delivery.occurred_at.isoformat(),
        "payload": [{"contentString": f"{_NOTICE_TEXT[delivery.event]} {delivery.task_url}"}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": communication,
                "request": {
                    "method": "POST",
                    "url": "Communication",
                    "ifNoneExist": f"identifier={DELIVERY_IDENTIFIER}|{quote(delivery.message_id, safe='')}",
                },
            }
        ],
    }


class FhirRestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    drop_elements: list[str] = []
    smart: SmartClientConfig | None = None

    @field_validator("drop_elements")
    @classmethod
    def _droppable(cls, value: list[str]) -> list[str]:
        refused = sorted(set(value) - DROPPABLE)
        if refused:
            raise ValueError(f"cannot drop {', '.join(refused)}; droppable: {', '.join(sorted(DROPPABLE))}")
        return sorted(set(value))


def _extra_headers(lines: tuple[str, ...], *, smart: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise MisconfiguredError("Endpoint.header is not a 'Name: value' line")
        lowered = name.lower()
        if lowered in _OWN_HEADERS or (smart and lowered == "authorization"):
            raise MisconfiguredError(f"Endpoint.header may not set {lowered}")
        headers[lowered] = value
    return headers


def _outcome(body: bytes) -> str:
    """Check the reply is a transaction-response and summarise it without clinical content."""
    try:
        reply = json.loads(body)
    except ValueError:
        reply = None
    if not isinstance(reply, dict) or reply.get("resourceType") != "Bundle":
        # A 2xx that is not FHIR usually means Endpoint.address is a web page, not the FHIR base.
        raise MisconfiguredError("the address answered 2xx without a Bundle: is it the FHIR base?")
    if reply.get("type") != "transaction-response":
        raise MisconfiguredError(
            f"the address answered a {reply.get('type')!s:.40} Bundle, not a transaction-response"
        )
    entries = [e for e in reply.get("entry") or [] if isinstance(e, dict)]
    statuses = [str((e.get("response") or {}).get("status", "")).split(" ", 1)[0] for e in entries]
    created = sum(s == "201" for s in statuses)
    existing = sum(s == "200" for s in statuses)
    return f"transaction-response, {len(entries)} entries ({created} created, {existing} existing)"


class FhirRestAdapter:
    slug: ClassVar[str] = "hl7-fhir-rest"
    connection_type: ClassVar[ConnectionType] = ConnectionType(HL7_CONNECTION_TYPE, "hl7-fhir-rest")
    config_model: ClassVar[type[BaseModel]] = FhirRestConfig
    description: ClassVar[str] = (
        "POST a FHIR transaction Bundle of conditional creates to the partner's FHIR base "
        "(optionally with SMART Backend Services client credentials)"
    )

    def wants_bundle(self, config: Any) -> bool:
        return True

    async def deliver(self, delivery: Delivery, config: Any, transport: Transport) -> Receipt:
        if not isinstance(config, FhirRestConfig):
            raise MisconfiguredError("hl7-fhir-rest needs a FhirRestConfig")
        bundle = self._prepare(delivery, config)
        headers = {"content-type": FHIR_JSON, "accept": FHIR_JSON, "prefer": "return=minimal"}
        headers.update(_extra_headers(delivery.headers, smart=config.smart is not None))
        content = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
        token = None
        try:
            # One deadline for the whole attempt, token request included (each POST also has its own).
            async with asyncio.timeout(transport.deadline_seconds), _http.session(transport) as http:
                if config.smart is not None:
                    token = await TOKENS.bearer(config.smart, http, transport)
                    headers["authorization"] = f"Bearer {token}"
                reply = await _http.post(
                    http, delivery.address, content=content, headers=headers, transport=transport
                )
        except TimeoutError:
            raise RetryableError(f"no complete response within {transport.deadline_seconds:g}s") from None
        if reply.status_code == 401:
            if config.smart is None or token is None:
                raise MisconfiguredError("the partner wants authentication: configure smart", status_code=401)
            # Revoked or expired early: forget it, and the next attempt fetches a new one.
            TOKENS.drop(config.smart, token)
            raise RetryableError("the partner refused the access token", status_code=401)
        receipt = _http.receipt_or_raise(reply)
        return Receipt(status_code=receipt.status_code, detail=_outcome(reply.body))

    @staticmethod
    def _prepare(delivery: Delivery, config: FhirRestConfig) -> dict[str, Any]:
        if delivery.bundle is None:
            return _notice_bundle(delivery)
        source: Mapping[str, Any] = delivery.bundle
        if source.get("resourceType") != "Bundle" or source.get("type") != "transaction":
            raise PermanentError("the hub's payload is not a transaction Bundle")
        bundle = copy.deepcopy(dict(source))  # never change what the worker handed us
        _conditional_creates(bundle)
        _drop_elements(bundle, config.drop_elements)
        return bundle
