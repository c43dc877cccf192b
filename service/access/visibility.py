"""The one place where visibility is applied: reads, searches, includes and history.

A resource outside the caller's reach is answered exactly as a missing one (404),
and is silently absent from searches, includes, totals and history.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, String, bindparam, false

from service.access.caller import Caller
from service.access.policy import PUBLIC_READ, may_read_type
from service.storage import access
from service.storage.resources import Stored


def is_visible(conn: Connection, caller: Caller, stored: Stored, *, granted: bool | None = None) -> bool:
    """``granted``: whether the caller's organisation has an access row, when already known."""
    if not may_read_type(caller, stored.resource_type):
        return False
    if stored.resource_type in PUBLIC_READ:
        return True
    if caller.role == "admin":
        # Admins see directory resources and audit, never clinical data (policy.ADMIN_READ).
        return True
    if granted is not None:
        return granted
    return access.has_access(conn, stored.rid, caller.organization_id)


Reach = Literal["none", "all", "granted"]

# The bind parameter that carries the organisation in a kept search statement (storage/search_sql.py).
_ORG = "vis_org"


def search_reach(caller: Caller, resource_type: str) -> Reach:
    """What a search of the type may see: nothing, everything, or what the caller's organisation has
    been granted. (A search's SQL depends on this and not on who the organisation is.)"""
    if not may_read_type(caller, resource_type):
        return "none"
    if unrestricted(caller, resource_type):
        return "all"
    return "granted"


def reach_condition(
    reach: Reach, rid_column: ColumnElement[int], organization_id: str
) -> ColumnElement[bool] | None:
    """Extra WHERE clause limiting a search to ``reach`` (None: no limit). The organisation is a named
    bind parameter, so a kept statement takes the next caller's from ``reach_values``."""
    if reach == "none":
        return false()
    if reach == "all":
        return None
    return access.visible_condition(rid_column, bindparam(_ORG, organization_id, type_=String()))


def reach_values(reach: Reach, organization_id: str) -> dict[str, Any]:
    """The values ``reach_condition``'s statement takes for this caller."""
    return {_ORG: organization_id} if reach == "granted" else {}


def unrestricted(caller: Caller, resource_type: str) -> bool:
    """True when every resource of the type is visible to the caller (given type access)."""
    return resource_type in PUBLIC_READ or caller.role == "admin"


def filter_visible(conn: Connection, caller: Caller, resources: list[Stored]) -> list[Stored]:
    """The subset of ``resources`` the caller may see (one query for the access rows)."""
    out = []
    restricted = []
    for s in resources:
        if not may_read_type(caller, s.resource_type):
            continue
        if unrestricted(caller, s.resource_type):
            out.append(s)
        else:
            restricted.append(s)
    if restricted:
        allowed = access.rids_with_access(conn, [s.rid for s in restricted], caller.organization_id)
        out.extend(s for s in restricted if s.rid in allowed)
    return out
