"""Reading the entries of a batch or transaction Bundle (http://hl7.org/fhir/R4/bundle.html)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from service.errors import BadRequest, FhirError, Issue, PayloadTooLarge
from service.rest.conditional import query_criteria
from service.rest.context import Context

MAX_ENTRIES = 1000
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")


@dataclass
class Entry:
    index: int
    method: str
    url: str  # relative to the base, e.g. "Patient/1" or "Patient?identifier=..."
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None

    @property
    def path(self) -> list[str]:
        return [p for p in self.url.partition("?")[0].split("/") if p]

    @property
    def params(self) -> list[tuple[str, str]]:
        return parse_qsl(self.url.partition("?")[2], keep_blank_values=True)


def envelope(body: Any) -> tuple[str, list[Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base takes a Bundle of type 'transaction' or 'batch'")
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest(
            "Bundle.type must be 'transaction' or 'batch' to be POSTed to the base",
            issues=[
                Issue(
                    code="invalid",
                    diagnostics="Bundle.type must be transaction or batch",
                    expression=("Bundle.type",),
                )
            ],
        )
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise BadRequest(
            "Bundle.entry must be an array",
            issues=[Issue("structure", "Bundle.entry must be an array", expression=("Bundle.entry",))],
        )
    if len(entries) > MAX_ENTRIES:
        raise PayloadTooLarge(f"A {kind} may hold at most {MAX_ENTRIES} entries; split it")
    return str(kind), entries


def parse_entry(ctx: Context, index: int, raw: Any) -> Entry | FhirError:
    where = f"Bundle.entry[{index}]"

    def bad(what: str, path: str) -> BadRequest:
        return BadRequest(
            f"{where}: {what}", issues=[Issue("required", what, expression=(f"{where}{path}",))]
        )

    request = raw.get("request") if isinstance(raw, dict) else None
    if not isinstance(request, dict):
        return bad("every entry needs a request", ".request")
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        return bad("request.method must be GET, HEAD, POST, PUT, PATCH or DELETE", ".request.method")
    if not isinstance(url, str) or not url.strip():
        return bad("request.url is required", ".request.url")
    url = url.strip()
    if url.startswith(("http://", "https://")):
        if not url.startswith(ctx.base_url + "/"):
            return bad("request.url must be relative to this server's base", ".request.url")
        url = url[len(ctx.base_url) + 1 :]
    resource = raw.get("resource")
    # A PATCH entry carries its patch document as a Binary (http://hl7.org/fhir/R4/http.html#transaction).
    if method in ("POST", "PUT", "PATCH") and not isinstance(resource, dict):
        return bad(f"a {method} entry needs a resource", ".resource")
    full_url = raw.get("fullUrl")
    if_none_exist = _text(request.get("ifNoneExist"))
    if method == "POST" and "?" in url:
        # Search parameters on a create are its conditional criteria, as on a plain POST (ADR 0010).
        path, _, query = url.partition("?")
        try:
            if_none_exist = query_criteria(parse_qsl(query, keep_blank_values=True), if_none_exist)
        except BadRequest as exc:
            return bad(exc.diagnostics, ".request.url")
        url = path
    return Entry(
        index,
        str(method),
        url.lstrip("/"),
        resource if isinstance(resource, dict) else None,
        full_url if isinstance(full_url, str) and full_url else None,
        if_none_exist,
        _text(request.get("ifMatch")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
