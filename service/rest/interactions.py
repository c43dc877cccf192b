"""read, vread, create, update, delete and history (http://hl7.org/fhir/R4/http.html).

Routes call these with a Context; each authorises, applies visibility, validates,
writes through storage, runs the same-transaction hooks and records the audit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.access import policy
from service.access.minimise import caller_view
from service.access.visibility import is_visible
from service.audit import record
from service.errors import BadRequest, Forbidden, Gone, MethodNotAllowed, NotFound, PreconditionFailed
from service.rest import registry
from service.rest.context import Context
from service.rest.hooks import run_after_write
from service.rest.validation import check_envelope, validate_write
from service.search.extract import extract_index_rows
from service.storage.resources import Stored, new_id


@dataclass
class Result:
    status: int
    stored: Stored | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def require_type(resource_type: str, interaction: str) -> None:
    if resource_type not in registry.TYPES:
        raise NotFound(f"Resource type '{resource_type}' is not supported by this server")
    if not registry.supports(resource_type, interaction):
        raise MethodNotAllowed(f"'{interaction}' is not supported on {resource_type}")


def _not_found(resource_type: str, resource_id: str) -> NotFound:
    # The same message for "missing" and "not yours": no existence oracle.
    return NotFound(f"{resource_type}/{resource_id} is not known")


def load_visible(ctx: Context, resource_type: str, resource_id: str) -> Stored:
    """The current version, if the caller may see it; 404 otherwise, 410 when deleted."""
    stored, granted = ctx.store.current_with_access(resource_type, resource_id, ctx.caller.organization_id)
    if stored is None or not is_visible(ctx.conn, ctx.caller, stored, granted=granted):
        raise _not_found(resource_type, resource_id)
    if stored.deleted:
        raise Gone(f"{resource_type}/{resource_id} was deleted", headers={"ETag": f'W/"{stored.version_id}"'})
    return stored


def read(ctx: Context, resource_type: str, resource_id: str) -> Result:
    require_type(resource_type, "read")
    policy.authorize(ctx.caller, resource_type, "read")
    stored = load_visible(ctx, resource_type, resource_id)
    record.access(ctx, "read", [stored])
    # A partner gets its service's view of an assessment (access.minimise); ETag stays the stored one.
    return Result(200, stored, caller_view(ctx.conn, ctx.caller, stored))


def vread(ctx: Context, resource_type: str, resource_id: str, version: str) -> Result:
    require_type(resource_type, "vread")
    policy.authorize(ctx.caller, resource_type, "vread")
    current = ctx.store.current(resource_type, resource_id)
    if current is None or not is_visible(ctx.conn, ctx.caller, current) or not version.isdigit():
        raise _not_found(resource_type, resource_id)
    stored = ctx.store.version(resource_type, resource_id, int(version))
    if stored is None:
        raise NotFound(f"{resource_type}/{resource_id} has no version {version}")
    if stored.deleted:
        raise Gone(f"Version {version} of {resource_type}/{resource_id} is a deletion")
    record.access(ctx, "vread", [stored])
    return Result(200, stored, caller_view(ctx.conn, ctx.caller, stored))


def create(ctx: Context, resource_type: str, body: Any, *, resource_id: str | None = None) -> Result:
    # resource_id: an id the server chose in advance (transaction entries, http.html#trules).
    require_type(resource_type, "create")
    policy.authorize(ctx.caller, resource_type, "create")
    resource = check_envelope(body, resource_type, None)
    resource.pop("id", None)  # server-assigned ids (http://hl7.org/fhir/R4/http.html#create)
    return _create_checked(ctx, resource_type, resource, resource_id)


def _create_checked(
    ctx: Context, resource_type: str, resource: dict[str, Any], resource_id: str | None = None
) -> Result:
    validate_write(ctx, resource_type, resource, None)
    # The id is chosen first so that the create's AuditEvent goes in with it, in the same inserts; a
    # failure after (a hook's refusal) rolls both back, as it would have rolled back either.
    resource_id = resource_id or new_id()
    stored = ctx.store.create(
        resource_type,
        resource,
        extract_index_rows(resource),
        now=ctx.now,
        resource_id=resource_id,
        audit=record.created(ctx, resource_type, resource_id),
        grants=_author_grant(ctx, resource_type),
    )
    run_after_write(ctx, stored, None)
    return Result(201, stored, stored.content, {"Location": location(ctx, stored)})


def update(ctx: Context, resource_type: str, resource_id: str, body: Any, if_match: str | None) -> Result:
    require_type(resource_type, "update")
    policy.authorize(ctx.caller, resource_type, "update")
    resource = check_envelope(body, resource_type, resource_id)
    old = ctx.store.current_for_write(resource_type, resource_id)
    # Deleted too: another organisation must not revive (and write into) a resource it never saw.
    hidden = old is not None and not is_visible(ctx.conn, ctx.caller, old)
    if old is None or old.deleted or hidden:
        if if_match is not None:
            raise PreconditionFailed(f"{resource_type}/{resource_id} does not exist; If-Match cannot hold")
        if old is None or hidden:
            # Update as create with a client-chosen id (CapabilityStatement updateCreate). A caller that
            # may not create gets 404 for an unknown id, and a hidden id answers the same (its id is taken),
            # so the status never tells "someone else's" from "missing" (issue 3, no existence oracle).
            # Clinical records are never created by PUT: ids are the server's, so "PUT to a
            # free id" cannot become an oracle for whether another organisation's id is taken.
            clinical = registry.TYPES[resource_type].kind == "clinical"
            if hidden or clinical or not _may_create(ctx, resource_type):
                raise _not_found(resource_type, resource_id)
            return _create_checked(ctx, resource_type, resource, resource_id)
    assert old is not None
    check_if_match(old, if_match)
    validate_write(ctx, resource_type, resource, None if old.deleted else old)
    stored = ctx.store.update(old, resource, extract_index_rows(resource), now=ctx.now)
    run_after_write(ctx, stored, None if old.deleted else old)
    record.access(ctx, "update", [stored])
    return Result(200 if not old.deleted else 201, stored, stored.content)


def _may_create(ctx: Context, resource_type: str) -> bool:
    try:
        policy.authorize(ctx.caller, resource_type, "create")
    except Forbidden:
        return False
    return True


def delete(ctx: Context, resource_type: str, resource_id: str, if_match: str | None = None) -> Result:
    require_type(resource_type, "delete")
    policy.authorize(ctx.caller, resource_type, "delete")
    old = ctx.store.current_for_write(resource_type, resource_id)
    if old is None or not is_visible(ctx.conn, ctx.caller, old):
        raise _not_found(resource_type, resource_id)
    if old.deleted:
        # Deleting a deleted resource succeeds without a new version (R4 http.html#delete).
        return Result(204, old)
    check_if_match(old, if_match)
    stored = ctx.store.delete(old, now=ctx.now)
    run_after_write(ctx, stored, old)
    record.access(ctx, "delete", [stored])
    return Result(204, stored)


def check_if_match(old: Stored, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(old.version_id):
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {old.version_id} of "
            f"{old.resource_type}/{old.id}"
        )


def _author_grant(ctx: Context, resource_type: str) -> list[tuple[str, str]]:
    # Clinical and clinic-owned directory records belong to the organisation that wrote them.
    if ctx.caller.role != "admin" and resource_type not in policy.PUBLIC_READ:
        return [(ctx.caller.organization_id, "author")]
    return []


def location(ctx: Context, stored: Stored) -> str:
    return f"{ctx.base_url}/{stored.resource_type}/{stored.id}/_history/{stored.version_id}"


def parse_version(value: str) -> int:
    if not value.isdigit():
        raise BadRequest(f"'{value}' is not a version id")
    return int(value)
