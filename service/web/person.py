"""A signed-in person as a ``Caller``, and one transaction per request made on their behalf.

The web app is a client of the domain layer, not of the HTTP API: a person's request becomes a Caller
for their organisation and role (so ``access.policy``, visibility and minimisation decide exactly as for
an API client of that organisation) whose ``person`` names them, so every AuditEvent's agent is the user
at the organisation (``audit.record``). Scopes are the least a person's pages need: partners read, move
their Tasks and record withdrawals; clinic staff read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from service.access.caller import Caller, Role
from service.audit import record
from service.rest import unit
from service.rest.context import Context
from service.settings import Settings
from service.storage.database import Database
from service.web.signin import Person

T = TypeVar("T")

CLIENT_ID = "wraparound-web"
SCOPES = {
    "partner": "system/*.rs system/Task.u system/Consent.c",
    "clinic": "system/*.rs",
}


def caller_for(person: Person, source: str) -> Caller:
    return Caller(
        client_id=CLIENT_ID,
        organization_id=person.organization_id,
        role=cast(Role, person.role),
        scopes=SCOPES[person.role],
        jti="",
        source=source,
        person=person.email,
    )


def run(db: Database, settings: Settings, caller: Caller, action: str, work: Callable[[Context], T]) -> T:
    """``work`` in one write transaction (reads write their AuditEvents with it), as the API runs a
    request (``rest.unit.transact``); a refusal is rolled back and audited as a failure of ``action``
    in a transaction of its own."""
    events: list[dict[str, Any]] = []
    try:
        return unit.transact(
            db,
            caller,
            work,
            events,
            base_url=settings.fhir_base(),
            allow_private_endpoints=settings.allow_private_endpoints,
            read_only=False,
            action=lambda: action,
        )
    finally:
        if events:
            with db.transaction(write=True) as conn:
                record.write_events(conn, events, datetime.now(UTC))
