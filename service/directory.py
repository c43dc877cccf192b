"""Loading a directory Bundle (Organizations, HealthcareServices, Locations, Endpoints) as the hub itself.

Loading is idempotent *by identifier*: each entry is matched on its conditional URL
(``PUT Organization?identifier=system|value``, http://hl7.org/fhir/R4/http.html#cond-update) or, in a
Bundle without requests, on its own identifier. Server ids are the hub's own, so one file loads the
same way into any hub. An entry whose content is unchanged is skipped rather than written again:
a conditional update with identical content would still make a new version, and re-running a load
(every ``wraparound demo`` start) must not grow the history.

References between entries are ``urn:uuid:`` fullUrls (http://hl7.org/fhir/R4/bundle.html#references);
entries are written in dependency order and each fullUrl is rewritten to the ``Type/id`` it became.
The generic transaction processor cannot report "unchanged" nor skip unchanged entries, hence this
dedicated loop over ``service.rest.conditional``; it runs in one database transaction, all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fhir_profiles import DIRECTORY_IDENTIFIER_SYSTEM
from service.access.caller import SYSTEM
from service.errors import BadRequest, Issue
from service.fhir.references import map_references, reference_set
from service.rest import conditional
from service.rest.context import Context
from service.rest.search import find
from service.storage.database import Database
from service.storage.resources import Stored

DIRECTORY_TYPES = ("Organization", "HealthcareService", "Location", "Endpoint")
# Server-maintained meta elements (http://hl7.org/fhir/R4/resource.html#Meta): not part of "the content".
_SERVER_META = ("versionId", "lastUpdated")


class DirectoryRefused(BadRequest):
    """A Bundle that is not a loadable directory; the message says which entry and why."""


@dataclass
class LoadReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Each entry's fullUrl (or, without one, its criteria) -> the "Type/id" it is stored as.
    ids: dict[str, str] = field(default_factory=dict)
    # Directory slug (identifier value in DIRECTORY_IDENTIFIER_SYSTEM) -> "Type/id".
    by_slug: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class _Entry:
    index: int
    key: str
    resource_type: str
    criteria: list[tuple[str, str]]
    resource: dict[str, Any]


def _refuse(index: int, message: str) -> DirectoryRefused:
    where = f"Bundle.entry[{index}]"
    return DirectoryRefused(
        f"{where}: {message}", issues=[Issue(code="invalid", diagnostics=message, expression=(where,))]
    )


def _identifier_criteria(index: int, resource: dict[str, Any]) -> list[tuple[str, str]]:
    usable = [
        i
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and isinstance(i.get("system"), str) and isinstance(i.get("value"), str)
    ]
    if not usable:
        raise _refuse(index, "has no identifier with system and value, so it cannot be loaded idempotently")
    chosen = next((i for i in usable if i["system"] == DIRECTORY_IDENTIFIER_SYSTEM), usable[0])
    return [("identifier", f"{chosen['system']}|{chosen['value']}")]


def _criteria(index: int, entry: dict[str, Any], resource_type: str) -> list[tuple[str, str]]:
    request = entry.get("request")
    if request is None:
        return _identifier_criteria(index, entry["resource"])
    if not isinstance(request, dict) or request.get("method") != "PUT":
        raise _refuse(index, "only conditional PUT requests (Type?identifier=...) can be loaded")
    path, _, query = str(request.get("url", "")).partition("?")
    if path.strip("/") != resource_type or not query:
        raise _refuse(index, f"request.url must be a conditional update like {resource_type}?identifier=...")
    params = parse_qsl(query, keep_blank_values=False)
    if not params:
        raise _refuse(index, "request.url has no search criteria")
    return params


def parse_directory(bundle: Any) -> list[_Entry]:
    """The Bundle's entries, checked: directory types only, each with criteria to match it by."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise DirectoryRefused("A directory must be a FHIR Bundle")
    if bundle.get("type") not in ("transaction", "batch", "collection"):
        raise DirectoryRefused("A directory Bundle must be of type transaction, batch or collection")
    entries = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            raise _refuse(index, "has no resource")
        resource_type = resource.get("resourceType")
        if resource_type not in DIRECTORY_TYPES:
            raise _refuse(
                index,
                f"{resource_type} is not a directory resource; only "
                f"{', '.join(DIRECTORY_TYPES)} can be loaded",
            )
        criteria = _criteria(index, entry, str(resource_type))
        key = str(entry.get("fullUrl") or f"{resource_type}?" + "&".join(f"{k}={v}" for k, v in criteria))
        body = {k: v for k, v in resource.items() if k != "id"}  # ids are the hub's own
        entries.append(_Entry(index, key, str(resource_type), criteria, body))
    return entries


def _in_dependency_order(entries: list[_Entry]) -> list[_Entry]:
    # Kahn's algorithm, stable: an entry goes as soon as every entry it references has gone.
    keys = {e.key for e in entries}
    pending = list(entries)
    done: set[str] = set()
    ordered: list[_Entry] = []
    while pending:
        ready = [e for e in pending if (reference_set(e.resource) & keys) - {e.key} <= done]
        if not ready:
            raise _refuse(pending[0].index, "takes part in a cycle of references between entries")
        for e in ready:
            ordered.append(e)
            done.add(e.key)
        pending = [e for e in pending if e.key not in done]
    return ordered


def _comparable(content: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in content.items() if k != "id"}
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in _SERVER_META}
    if meta:
        out["meta"] = meta
    return out


def _slug(resource: dict[str, Any]) -> str | None:
    for ident in resource.get("identifier") or []:
        if isinstance(ident, dict) and ident.get("system") == DIRECTORY_IDENTIFIER_SYSTEM:
            value = ident.get("value")
            return value if isinstance(value, str) else None
    return None


def load_bundle(ctx: Context, bundle: Any) -> LoadReport:
    """Create, update or skip each directory entry in ``ctx``'s transaction."""
    report = LoadReport()
    for entry in _in_dependency_order(parse_directory(bundle)):
        resource = map_references(entry.resource, lambda ref: report.ids.get(ref, ref))
        dangling = sorted(r for r in reference_set(resource) if r.startswith("urn:"))
        if dangling:
            raise _refuse(entry.index, f"refers to {dangling[0]}, which is not an entry of this Bundle")
        stored = _write(ctx, entry, resource, report)
        report.ids[entry.key] = f"{stored.resource_type}/{stored.id}"
        slug = _slug(resource)
        if slug:
            report.by_slug[slug] = report.ids[entry.key]
    return report


def _write(ctx: Context, entry: _Entry, resource: dict[str, Any], report: LoadReport) -> Stored:
    matches = find(ctx, entry.resource_type, entry.criteria)
    if len(matches) == 1 and _comparable(matches[0].content or {}) == _comparable(resource):
        report.unchanged += 1
        return matches[0]
    result = conditional.update(ctx, entry.resource_type, entry.criteria, resource, None)
    if result.status == 201:
        report.created += 1
    else:
        report.updated += 1
    assert result.stored is not None  # an update or create always stores a version
    return result.stored


def load_directory(
    db: Database,
    bundle: Any,
    *,
    base_url: str,
    now: datetime | None = None,
    allow_private_endpoints: bool = False,
) -> LoadReport:
    """Load ``bundle`` in one transaction as the hub itself (the SYSTEM caller, audited as such)."""
    with db.transaction(write=True) as conn:
        ctx = Context(
            conn=conn,
            caller=SYSTEM,
            base_url=base_url,
            now=now or datetime.now(UTC),
            allow_private_endpoints=allow_private_endpoints,
        )
        return load_bundle(ctx, bundle)
