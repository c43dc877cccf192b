"""SQL for finding definitions (Questionnaire, ValueSet, CodeSystem, ConceptMap) by canonical URL.

Canonical references name a resource by ``url`` (and optionally ``|version``), never by id
(http://hl7.org/fhir/R4/references.html#canonical). Every definition type indexes its ``url``
search parameter, so the lookup is an index probe on ``idx_uri``.
"""

from __future__ import annotations

from sqlalchemy import Connection, false, select

from service.storage.resources import COLUMNS, R, Stored, row_to_stored
from service.storage.tables import IdxUri

U = IdxUri.__table__  # type: ignore[attr-defined]


def with_url(conn: Connection, resource_type: str, url: str) -> list[Stored]:
    """Current, non-deleted resources of the type whose ``url`` is exactly ``url`` (any version)."""
    sub = select(U.c.rid).where(U.c.resource_type == resource_type, U.c.param == "url", U.c.value == url)
    rows = conn.execute(
        select(*COLUMNS)
        .where(R.c.resource_type == resource_type, R.c.deleted == false(), R.c.rid.in_(sub))
        .order_by(R.c.rid)
    ).all()
    return [row_to_stored(r) for r in rows]
