"""What one outbox row sends, and to where: the recipient's Endpoint and the partner's view.

Read at send time, never copied into the outbox (ADR 0004), so a withdrawal of consent between the
commit and the send still stops it: a referral goes out only while the recipient may still read the
ServiceRequest (its access grant stands and has not lapsed).

The Bundle is a FHIR ``transaction`` the recipient can apply as it is:
- every resource carries the hub identifier ``https://wraparound.org.uk/fhir/sid/hub-resource|Type/id``;
- Patient, Consent and QuestionnaireResponse are conditional creates (``ifNoneExist`` on that identifier),
  so a redelivery makes no duplicate; ServiceRequest and Task are conditional updates
  (``PUT Type?identifier=``), so a later notice moves the recipient's copy along;
- references between entries are ``urn:uuid`` fullUrls derived from the hub id (stable across retries);
  references to resources not in the Bundle become conditional references by the hub identifier.
http://hl7.org/fhir/R4/http.html#trules (transaction processing, conditional references)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from service.access.minimise import MINIMISED_TYPE, Allowance, organization_view, policy, redact
from service.fhir.references import as_list, map_references, reference_of
from service.rest.context import Context
from service.storage import access
from service.storage.resources import Stored

HUB_IDENTIFIER = "https://wraparound.org.uk/fhir/sid/hub-resource"
_NAMESPACE = uuid.UUID("6f1d8a52-3c61-4f0e-9a7e-7d2b8c1e5a10")  # urn:uuid fullUrls for hub resources
_CREATE_ONCE = ("Patient", "Consent", "QuestionnaireResponse")


@dataclass
class Contents:
    """What a delivery may disclose: the resources sent and the Patient they are about (for audit)."""

    resources: list[Stored] = field(default_factory=list)
    patient: str | None = None
    refused: str | None = None  # why nothing may be sent (consent withdrawn, lapsed, Task closed)
    # The read transaction the contents were found in: the partner's view is made in it too.
    conn: Connection | None = field(default=None, repr=False, compare=False)


def _hub_ref(stored: Stored) -> str:
    return f"{stored.resource_type}/{stored.id}"


def full_url(reference: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, reference)}"


def _get(ctx: Context, reference: str | None, types: tuple[str, ...]) -> Stored | None:
    if not reference or "/" not in reference:
        return None
    rtype, rid = reference.split("/", 1)
    if rtype not in types:
        return None
    found = ctx.store.current(rtype, rid)
    return found if found is not None and not found.deleted and found.content is not None else None


def focus_request(ctx: Context, task: Stored) -> Stored | None:
    """The ServiceRequest a Task fulfils (its focus), if it still exists."""
    return _get(ctx, reference_of((task.content or {}).get("focus")), ("ServiceRequest",))


def referral_contents(ctx: Context, task: Stored, request: Stored | None, recipient_org: str) -> Contents:
    """The partner's referral: ServiceRequest, Patient, Consents and assessments it may read, and the Task."""
    content = task.content or {}
    if request is None:
        return Contents(refused="the referral no longer exists")
    if not access.has_access(ctx.conn, request.rid, recipient_org):
        return Contents(refused="the recipient may no longer read the referral (consent withdrawn or lapsed)")
    body = request.content or {}
    wanted: list[str | None] = [reference_of(body.get("subject"))]
    wanted += [reference_of(info) for info in as_list(body.get("supportingInfo"))]
    wanted += [
        reference_of(i.get("valueReference")) for i in as_list(content.get("input")) if isinstance(i, dict)
    ]
    shared: list[Stored] = []
    seen: set[str] = set()
    for reference in wanted:
        found = _get(ctx, reference, ("Patient", "Consent", "QuestionnaireResponse"))
        if found is None or _hub_ref(found) in seen:
            continue
        # Only what the recipient itself may read right now (the same grants as its API reads).
        if access.has_access(ctx.conn, found.rid, recipient_org):
            seen.add(_hub_ref(found))
            shared.append(found)
    patient = reference_of(body.get("subject"))
    return Contents(resources=[*shared, request, task], patient=patient, conn=ctx.conn)


def notice_contents(task: Stored) -> Contents:
    """A Task-only notice (a status change, a withdrawal): ids and status, no clinical detail."""
    return Contents(resources=[task], patient=reference_of((task.content or {}).get("for")))


def partner_view(stored: Stored, recipient_org: str, conn: Connection | None = None) -> dict[str, Any]:
    """The resource as this recipient may receive it.

    The same view a partner's API read returns (``service.access.minimise``, by the recipient's
    grants), so delivery and reads can never differ. Without a connection to look the grants up,
    an assessment goes with no items at all: fail closed.
    """
    if conn is None:
        if stored.resource_type != MINIMISED_TYPE or stored.content is None:
            return dict(stored.content or {})
        return dict(redact(stored.content, Allowance(), policy().label))
    return dict(organization_view(conn, recipient_org, stored) or {})


def transaction_bundle(
    contents: Contents,
    recipient_org: str,
    *,
    hub_base: str,
    linked: bool,
) -> dict[str, Any]:
    """The delivery as a transaction. ``linked``: the recipient already holds this referral's resources
    (it received the referral), so references to them are conditional references to its own copies;
    otherwise (a clinic, or a notice about a referral that never went) they are absolute hub URLs."""
    included = {_hub_ref(s) for s in contents.resources}

    def rewrite(reference: str) -> str:
        if reference in included:
            return full_url(reference)
        if "/" in reference and not reference.startswith(("http:", "https:", "urn:", "#")):
            if linked:
                return f"{reference.split('/', 1)[0]}?identifier={HUB_IDENTIFIER}|{reference}"
            return f"{hub_base}/{reference}"
        return reference

    entries = []
    for stored in contents.resources:
        resource = partner_view(stored, recipient_org, contents.conn)
        hub_ref = _hub_ref(stored)
        resource.pop("id", None)
        meta = {
            k: v for k, v in (resource.pop("meta", None) or {}).items() if k in ("security", "tag", "profile")
        }
        if meta:
            resource["meta"] = meta
        resource = map_references(resource, rewrite)
        identifiers = [i for i in as_list(resource.get("identifier")) if i.get("system") != HUB_IDENTIFIER]
        mine = {"system": HUB_IDENTIFIER, "value": hub_ref}
        # QuestionnaireResponse.identifier is a single Identifier in R4, not a list.
        resource["identifier"] = (
            mine if stored.resource_type == "QuestionnaireResponse" else [*identifiers, mine]
        )
        condition = f"identifier={HUB_IDENTIFIER}|{hub_ref}"
        if stored.resource_type in _CREATE_ONCE:
            request = {"method": "POST", "url": stored.resource_type, "ifNoneExist": condition}
        else:
            request = {"method": "PUT", "url": f"{stored.resource_type}?{condition}"}
        entries.append({"fullUrl": full_url(hub_ref), "resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
