"""SQL for finding definitions (Questionnaire, ValueSet, CodeSystem, ConceptMap) by canonical URL.

Canonical references name a resource by ``url`` (and optionally ``|version``), never by id
(http://hl7.org/fhir/R4/references.html#canonical). Types whose ``url`` search parameter is
indexed are found through ``idx_uri``; other types (R4 has no ConceptMap-url parameter registered
here) fall back to the ``url`` element of the stored JSON, which is fine for the handful of
definitions a hub holds and keeps one code path for callers.
"""

from __future__ import annotations

from sqlalchemy import Connection, false, select

from service.storage.resources import COLUMNS, R, Stored, row_to_stored
from service.storage.tables import IdxUri

U = IdxUri.__table__  # type: ignore[attr-defined]


def with_url(conn: Connection, resource_type: str, url: str, *, indexed: bool) -> list[Stored]:
    """Current, non-deleted resources of the type whose ``url`` is exactly ``url`` (any version)."""
    if indexed:
        sub = select(U.c.rid).where(U.c.resource_type == resource_type, U.c.param == "url", U.c.value == url)
        condition = R.c.rid.in_(sub)
    else:
        condition = R.c.content["url"].as_string() == url
    rows = conn.execute(
        select(*COLUMNS)
        .where(R.c.resource_type == resource_type, R.c.deleted == false(), condition)
        .order_by(R.c.rid)
    ).all()
    return [row_to_stored(r) for r in rows]
