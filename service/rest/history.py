"""Instance and type history (http://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from service.access import policy
from service.access.minimise import caller_views
from service.access.visibility import is_visible, unrestricted
from service.audit import record
from service.errors import BadRequest, NotFound
from service.fhir.instant import fhir_instant
from service.rest.context import Context
from service.rest.interactions import require_type
from service.search.parse import MAX_COUNT
from service.storage.resources import Stored

DEFAULT_COUNT = 50


def _parse(params: list[tuple[str, str]]) -> tuple[datetime | None, datetime | None, int, int]:
    since = at = None
    count, offset = DEFAULT_COUNT, 0
    for key, value in params:
        try:
            if key == "_since":
                since = datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif key == "_at":
                at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif key == "_count":
                count = max(1, min(int(value), MAX_COUNT))
            elif key == "_offset":
                offset = max(0, int(value))
        except ValueError:
            raise BadRequest(f"History parameter {key} has an invalid value") from None
    for dt in (since, at):
        if dt is not None and dt.tzinfo is None:
            raise BadRequest("History _since/_at need a time zone")
    return since, at, count, offset


def _bundle(
    ctx: Context,
    path: str,
    versions: list[tuple[Stored, str]],
    total: int,
    params: list[tuple[str, str]],
    count: int,
    offset: int,
) -> dict[str, Any]:
    entries = []
    # Every version of an assessment in the caller's view (access.minimise), as a read would give it.
    contents = caller_views(ctx.conn, ctx.caller, [stored for stored, _ in versions])
    for (stored, method), content in zip(versions, contents, strict=True):
        full = f"{ctx.base_url}/{stored.resource_type}/{stored.id}"
        entry: dict[str, Any] = {
            "fullUrl": full,
            "request": {
                "method": method,
                "url": f"{stored.resource_type}/{stored.id}" if method != "POST" else stored.resource_type,
            },
            "response": {
                "status": {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}.get(
                    method, "200 OK"
                ),
                "etag": f'W/"{stored.version_id}"',
                "lastModified": fhir_instant(stored.last_updated),
            },
        }
        if content is not None:
            entry["resource"] = content
        entries.append(entry)
    base_params = [(k, v) for k, v in params if k not in ("_offset",)]
    links = [{"relation": "self", "url": f"{ctx.base_url}/{path}?{urlencode(params)}".rstrip("?")}]
    if offset + count < total:
        links.append(
            {
                "relation": "next",
                "url": f"{ctx.base_url}/{path}?{urlencode([*base_params, ('_offset', str(offset + count))])}",
            }
        )
    if offset > 0:
        prev = max(0, offset - count)
        links.append(
            {
                "relation": "previous",
                "url": f"{ctx.base_url}/{path}?{urlencode([*base_params, ('_offset', str(prev))])}",
            }
        )
    # FHIR JSON has no empty arrays: an empty history has no `entry`.
    return {"resourceType": "Bundle", "type": "history", "total": total, "link": links} | (
        {"entry": entries} if entries else {}
    )


def instance(
    ctx: Context, resource_type: str, resource_id: str, params: list[tuple[str, str]]
) -> dict[str, Any]:
    require_type(resource_type, "history-instance")
    policy.authorize(ctx.caller, resource_type, "history-instance")
    current = ctx.store.current(resource_type, resource_id)
    if current is None or not is_visible(ctx.conn, ctx.caller, current):
        raise NotFound(f"{resource_type}/{resource_id} is not known")
    since, at, count, offset = _parse(params)
    versions, total = ctx.store.history(
        resource_type, resource_id, since=since, at_or_before=at, limit=count, offset=offset
    )
    record.access(ctx, "history", [v for v, _ in versions])
    return _bundle(ctx, f"{resource_type}/{resource_id}/_history", versions, total, params, count, offset)


def type_(ctx: Context, resource_type: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    require_type(resource_type, "history-type")
    policy.authorize(ctx.caller, resource_type, "history-type")
    since, at, count, offset = _parse(params)
    # Restrict to resources the caller may see *now*: history never widens visibility.
    visible_to = None if unrestricted(ctx.caller, resource_type) else ctx.caller.organization_id
    versions, total = ctx.store.history(
        resource_type, None, since=since, at_or_before=at, limit=count, offset=offset, visible_to=visible_to
    )
    record.access(ctx, "history", [v for v, _ in versions])
    return _bundle(ctx, f"{resource_type}/_history", versions, total, params, count, offset)
