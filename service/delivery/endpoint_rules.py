"""Endpoint write rules: a connection type the hub can deliver through, and an address it may send to.

Issue 8 ("Endpoints are checked when they are written"): an Endpoint whose address the hub must not
reach is refused with 422 when it is created or updated -- not first discovered by the worker -- so
an admin learns at once. The worker checks again at send time against the address it actually
connects to (``adapters._http``); this is the early, friendly half of the guard, not the only one.

- ``Endpoint.connectionType`` (http://hl7.org/fhir/R4/endpoint-definitions.html#Endpoint.connectionType)
  must name an adapter: a built-in one pyproject declares, or one the registry loaded.
- ``secure-email``: ``mailto:`` with exactly one plain addr-spec (RFC 6068, RFC 5322 section 3.4.1)
  and nothing else -- no ``?cc=``/``?body=`` headers and no line breaks, which would let the address
  add recipients or forge headers in the notification.
- any other type: an https URL (http too under ``WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS``) without
  credentials or fragment, whose host is and resolves to public space only (``auth.netguard``).
"""

from __future__ import annotations

import re
from typing import Any

from adapters.base import HL7_CONNECTION_TYPE, WRAPAROUND_CONNECTION_TYPE, ConnectionType
from adapters.registry import installed
from auth.netguard import RefusedAddress, check_public_url
from service.errors import Issue
from service.rest.context import Context
from service.rest.validation import register_rule
from service.storage.resources import Stored

SECURE_EMAIL = ConnectionType(HL7_CONNECTION_TYPE, "secure-email")
# The built-ins (pyproject's entry points). Accepted even while one fails to load, so a broken
# install shows up as a visible, replayable delivery misconfiguration instead of blocking the directory.
DECLARED = (
    ConnectionType(HL7_CONNECTION_TYPE, "hl7-fhir-rest"),
    SECURE_EMAIL,
    ConnectionType(WRAPAROUND_CONNECTION_TYPE, "webhook"),
)

_ADDRESS = ("Endpoint.address",)
_CONNECTION_TYPE = ("Endpoint.connectionType",)

# RFC 5322 dot-atom local part; a domain of LDH labels (RFC 1035), at least two of them, no
# address literals ("user@[10.0.0.1]"), quoted local parts or comments: nothing a relay could misread.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")
_LINE_BREAK = re.compile(r"[\r\n]|%0d|%0a", re.IGNORECASE)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def known_connection_types() -> tuple[ConnectionType, ...]:
    """The declared built-ins plus whatever the adapter registry loaded, without duplicates."""
    loaded = (adapter.connection_type for adapter in installed().adapters)
    return tuple(dict.fromkeys((*DECLARED, *loaded)))


def _value(diagnostics: str, code: str = "value") -> Issue:
    return Issue(code=code, diagnostics=f"Endpoint.address: {diagnostics}", expression=_ADDRESS)


def mailto_issues(address: str) -> list[Issue]:
    if not address.lower().startswith("mailto:"):
        return [_value("a secure-email Endpoint needs a mailto: address")]
    target = address[len("mailto:") :]
    if _LINE_BREAK.search(target):
        return [_value("a mailto: address must not contain line breaks", "security")]
    if "?" in target:
        return [_value("a mailto: address must not carry headers (?cc=, ?subject=, ?body=)", "security")]
    if "#" in target:
        return [_value("a mailto: address must not carry a fragment")]
    if "%" in target:
        return [_value("write the mailto: address without percent-encoding")]
    if "," in target:
        return [_value("a mailto: address must name exactly one recipient")]
    match = _ADDR_SPEC.fullmatch(target)
    domain = match.group("domain") if match else ""
    # A numeric last label is an IP address in disguise; real top-level domains are never numeric.
    if match is None or domain.rsplit(".", 1)[-1].isdigit():
        return [_value("a mailto: address must hold one plain email address (name@example.org)")]
    if len(match.group("local")) > 64 or len(target) > 254:  # RFC 5321 section 4.5.3.1
        return [_value("the email address is too long")]
    return []


def url_issues(address: str, *, allow_private: bool) -> list[Issue]:
    # urlsplit silently drops tabs and line breaks (bpo-43882): check the text as stored.
    if _CONTROL_OR_SPACE.search(address):
        return [_value("the address must not contain spaces or control characters")]
    if "#" in address:
        return [_value("the address must not carry a fragment")]
    try:
        check_public_url(address, allow_private=allow_private)
    except RefusedAddress as exc:
        return [_value(str(exc), "security")]
    except ValueError as exc:
        return [_value(str(exc))]
    return []


def _connection_type(new: dict[str, Any]) -> ConnectionType | None:
    coding = new.get("connectionType")
    if not isinstance(coding, dict):
        return None
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return None
    return ConnectionType(system, code)


def endpoint_rule(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    """Every write, create or update alike: a stored address may have been fine under other DNS."""
    issues: list[Issue] = []
    connection_type = _connection_type(new)
    known = known_connection_types()
    if connection_type not in known:
        supported = ", ".join(str(t) for t in known)
        issues.append(
            Issue(
                code="value",
                diagnostics=f"Endpoint.connectionType must be one of the supported types: {supported}",
                expression=_CONNECTION_TYPE,
            )
        )
    address = new.get("address")
    if not isinstance(address, str) or not address:
        return [*issues, _value("an Endpoint needs an address", "required")]
    if connection_type == SECURE_EMAIL:
        issues.extend(mailto_issues(address))
    else:
        issues.extend(url_issues(address, allow_private=ctx.allow_private_endpoints))
    issues.extend(header_issues(new.get("header")))
    return issues


# No CR, LF, NUL or other control characters: a stored header must never be able to forge another one
# in the webhook or FHIR request. The form ("Name: value") is the adapter's to check when it sends
# (R4 leaves Endpoint.header's usage to the channel: the spec's own example is "bearer-code …").
_HEADER = re.compile(r"^[\t\x20-\x7e]*$")


def header_issues(headers: object) -> list[Issue]:
    if headers is None:
        return []
    issues = []
    for index, header in enumerate(headers if isinstance(headers, list) else [headers]):
        if not isinstance(header, str) or not _HEADER.match(header):
            issues.append(
                Issue(
                    code="security",
                    diagnostics="Endpoint.header must be printable ASCII with no line breaks",
                    expression=(f"Endpoint.header[{index}]",),
                )
            )
    return issues


register_rule("Endpoint", endpoint_rule, network=True)  # check_public_url resolves the host
