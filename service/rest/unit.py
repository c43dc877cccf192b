"""One unit of work: a domain interaction in one transaction, for the API and the web app alike.

``transact`` runs ``work`` in a read or a write transaction and commits, or rolls back. The
AuditEvents still to be committed are added to ``events``: a read-only interaction's (it holds no
write transaction, ADR 0012), or the refusal of a failed one (its own transaction rolled back). The
caller commits those: the API through the process's audit writer (``api.deps``), the web app in a
write transaction of its own (``web.person``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from service.access.caller import Caller
from service.audit import record
from service.errors import Conflict, FhirError
from service.rest.context import Context
from service.storage.database import Database
from service.storage.errors import is_contention

T = TypeVar("T")


def transact(
    db: Database,
    caller: Caller,
    work: Callable[[Context], T],
    events: list[dict[str, Any]],
    *,
    base_url: str,
    allow_private_endpoints: bool,
    read_only: bool,
    action: Callable[[], str],
    query: str | None = None,
    kept: bool = False,
) -> T:
    """``work`` in one transaction; ``action`` names the interaction for a refusal's AuditEvent;
    ``kept``: on the thread's kept connection (``Database.transaction``; a write raises
    ``WriterBusy``, with nothing begun or recorded, when SQLite's write lock is not free)."""
    try:
        try:
            with db.transaction(write=not read_only, kept=kept) as conn:
                ctx = Context(
                    conn=conn,
                    caller=caller,
                    base_url=base_url,
                    allow_private_endpoints=allow_private_endpoints,
                    read_only=read_only,
                )
                result = work(ctx)
        except DBAPIError as exc:
            if not is_contention(exc):
                raise
            # A deadlock or lock timeout against a concurrent request: the client may retry.
            raise Conflict(
                "The request conflicted with a concurrent change and was rolled back; retry it",
                headers={"Retry-After": "1"},
            ) from None
    except FhirError as exc:
        events.append(
            record.build_event(
                caller=caller,
                action=action(),
                now=datetime.now(UTC),
                status=exc.status,
                description=exc.diagnostics,
                query=query,
            )
        )
        raise
    events.extend(ctx.audit)
    return result
