"""One attempt at one claimed outbox row: prepare (read), send (adapter), settle (write).

Prepare and settle are short database transactions run in a thread; the send in between holds no
transaction and no lock, so a slow partner never holds the database. Settling names the claim's fence:
a worker whose lease expired and whose row was claimed again cannot mark it delivered or dead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import Adapter, Delivery, DeliveryError, Receipt, RetryableError
from adapters.registry import Registry
from service.access.caller import Caller
from service.audit import record
from service.delivery import config as endpoint_config
from service.delivery import payload, route
from service.delivery.backoff import delay_seconds
from service.delivery.secrets import SecretBox, SecretUnreadable
from service.errors import FhirError
from service.fhir.instant import fhir_instant
from service.rest.context import Context
from service.settings import Settings
from service.storage import outbox as outbox_sql
from service.storage.database import Database
from service.storage.outbox import OutboxRow
from service.storage.resources import Stored

log = logging.getLogger("wraparound.delivery")

# The hub's delivery worker as an audit agent (it acts on its own account).
DELIVERY = Caller(
    client_id="wraparound-delivery", organization_id="wraparound", role="admin", scopes="", jti=""
)
AUDIT_SUBTYPE = f"{payload.HUB_IDENTIFIER.rsplit('/sid/', 1)[0]}/CodeSystem/audit-event-subtype"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_PAYLOAD_KINDS = ("referral.created",)


@dataclass
class Prepared:
    """What the worker found for a row: something to send, or why there is nothing to send."""

    state: str  # "send", or a final state: pull, cancelled, dead (misconfigured)
    reason: str = ""
    endpoint_id: str | None = None
    adapter: Adapter | None = None
    config: BaseModel | None = None
    delivery: Delivery | None = None
    sent: list[Stored] = field(default_factory=list)
    patient: str | None = None


@dataclass(frozen=True)
class Outcome:
    outcome: str  # delivered, retryable, permanent, misconfigured, pull, cancelled
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None
    duration_ms: float = 0.0


def prepare(db: Database, row: OutboxRow, settings: Settings, registry: Registry, box: SecretBox) -> Prepared:
    return prepare_many(db, [row], settings, registry, box)[0]


def prepare_many(
    db: Database, rows: list[OutboxRow], settings: Settings, registry: Registry, box: SecretBox
) -> list[Prepared]:
    """Prepare a claimed batch in one read transaction (Endpoints and configurations looked up once)."""
    with db.transaction(write=False) as conn:
        ctx = Context(conn=conn, caller=DELIVERY, base_url=settings.fhir_base())
        prepared = []
        for row in rows:
            try:
                prepared.append(_prepare(ctx, row, settings, registry, box))
            except SQLAlchemyError:
                raise
            except Exception as exc:  # a row the hub cannot build must not loop for ever: count it
                log.warning("delivery %s: could not prepare (%s)", row.id, type(exc).__name__)
                prepared.append(Prepared("error", f"{type(exc).__name__} while preparing the delivery"))
        return prepared


def _prepare(
    ctx: Context, row: OutboxRow, settings: Settings, registry: Registry, box: SecretBox
) -> Prepared:
    task = ctx.store.current("Task", row.focus.split("/", 1)[1]) if row.focus.startswith("Task/") else None
    if task is None or task.deleted or task.content is None:
        return Prepared("cancelled", "the Task no longer exists")
    request = payload.focus_request(ctx, task)
    endpoint = route.endpoint_for(ctx, request, row.organization_id)
    if endpoint is None:
        return Prepared("pull", "no active Endpoint: the recipient pulls its Tasks")
    content = endpoint.content or {}
    coding = content.get("connectionType") or {}
    adapter = registry.by_connection_type(coding.get("system"), coding.get("code"))
    if adapter is None:
        return Prepared(
            "dead",
            f"no adapter installed for {coding.get('system')}#{coding.get('code')}",
            endpoint_id=endpoint.id,
        )
    try:
        config = _config(ctx, endpoint.id, adapter, box)
    except (SecretUnreadable, FhirError) as exc:  # an unreadable or invalid stored configuration
        return Prepared(
            "dead", f"configuration unusable: {type(exc).__name__}", endpoint_id=endpoint.id, adapter=adapter
        )
    if row.kind in _PAYLOAD_KINDS:
        contents = payload.referral_contents(ctx, task, request, row.organization_id)
        if contents.refused:
            return Prepared("cancelled", contents.refused, endpoint_id=endpoint.id, adapter=adapter)
    else:
        contents = payload.notice_contents(task)
    bundle = None
    if adapter.wants_bundle(config):
        bundle = payload.transaction_bundle(
            contents,
            row.organization_id,
            hub_base=settings.fhir_base(),
            linked=row.kind in _PAYLOAD_KINDS or _received_referral(ctx, row),
        )
    base = settings.fhir_base()
    delivery = Delivery(
        message_id=row.message_id,
        event=row.kind,  # type: ignore[arg-type]
        attempt=row.attempts + 1,
        address=str(content.get("address") or ""),
        recipient=f"Organization/{row.organization_id}",
        task=f"Task/{task.id}",
        task_url=f"{base}/Task/{task.id}",
        collect_url=settings.collect_url or f"{settings.public_base()}/app/",
        hub_base=base,
        occurred_at=row.created_at,
        task_status=(task.content or {}).get("status"),
        bundle=bundle,
        headers=tuple(h for h in content.get("header") or [] if isinstance(h, str)),
    )
    sent = contents.resources if bundle is not None else [task]
    return Prepared(
        "send",
        endpoint_id=endpoint.id,
        adapter=adapter,
        config=config,
        delivery=delivery,
        sent=sent,
        patient=contents.patient,
    )


def _config(ctx: Context, endpoint_id: str, adapter: Adapter, box: SecretBox) -> BaseModel:
    key = f"endpoint-config:{endpoint_id}:{adapter.slug}"
    if key not in ctx.memo:
        ctx.memo[key] = endpoint_config.load(ctx.conn, endpoint_id, adapter, box)
    config: BaseModel = ctx.memo[key]
    return config


def _received_referral(ctx: Context, row: OutboxRow) -> bool:
    """Whether the referral itself reached this recipient (so it holds copies to link a notice to)."""
    earlier = outbox_sql.listing(
        ctx.conn, organization_id=row.organization_id, focus=row.focus, state="delivered"
    )
    return any(r.kind in _PAYLOAD_KINDS for r in earlier)


async def send(prepared: Prepared, settings: Settings, transport: Any) -> Outcome:
    """Hand the delivery to its adapter, bounded by the attempt deadline; never raises."""
    assert prepared.adapter is not None
    assert prepared.delivery is not None
    started = time.perf_counter()

    try:
        async with asyncio.timeout(settings.delivery_deadline_seconds + 1):
            receipt: Receipt = await prepared.adapter.deliver(prepared.delivery, prepared.config, transport)
    except RetryableError as exc:
        return Outcome("retryable", exc.status_code, _error(exc), exc.retry_after, _ms(started))
    except DeliveryError as exc:
        return Outcome(exc.outcome, exc.status_code, _error(exc), None, _ms(started))
    except TimeoutError:
        return Outcome("retryable", None, "TimeoutError: the attempt's deadline passed", None, _ms(started))
    except Exception as exc:  # an adapter bug must not kill the worker: retried, and reported by type only
        log.warning("adapter %s raised %s", prepared.adapter.slug, type(exc).__name__)
        return Outcome("retryable", None, f"{type(exc).__name__} in the adapter", None, _ms(started))
    return Outcome("delivered", receipt.status_code, (receipt.detail or "")[:200] or None, None, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _error(exc: DeliveryError) -> str:
    return f"{type(exc).__name__}: {exc.message}"[:300]


@dataclass(frozen=True)
class Settled:
    """One finished attempt, waiting to be recorded."""

    row: OutboxRow
    prepared: Prepared
    outcome: Outcome
    started_at: datetime


def settle(
    db: Database,
    row: OutboxRow,
    prepared: Prepared,
    outcome: Outcome,
    *,
    worker: str,
    settings: Settings,
    started_at: datetime,
) -> str:
    """Record the attempt and move the row on; returns the row's new state ("lost" if the claim was)."""
    return settle_many(db, [Settled(row, prepared, outcome, started_at)], worker=worker, settings=settings)[0]


def settle_many(db: Database, batch: list[Settled], *, worker: str, settings: Settings) -> list[str]:
    """Record a batch of finished attempts in one write transaction (one commit for many deliveries):
    the attempt rows and the disclosure AuditEvents as multi-row inserts, each outbox row fenced."""
    now = datetime.now(UTC)
    with db.transaction(write=True) as conn:
        outbox_sql.record_attempts(
            conn,
            [
                outbox_sql.attempt_values(
                    item.row,
                    attempt=item.row.attempts + 1,
                    started_at=item.started_at,
                    duration_ms=item.outcome.duration_ms,
                    outcome=item.outcome.outcome,
                    worker=worker,
                    endpoint_id=item.prepared.endpoint_id,
                    status_code=item.outcome.status_code,
                    error=item.outcome.error,
                )
                for item in batch
            ],
        )
        # A disclosure happened whatever becomes of the claim: audit it either way.
        record.write_events(
            conn,
            [
                _disclosure(item.row, item.prepared, now)
                for item in batch
                if item.outcome.outcome == "delivered"
            ],
            now,
        )
        return [_settle(conn, item, settings=settings, now=now) for item in batch]


def _settle(conn: Any, item: Settled, *, settings: Settings, now: datetime) -> str:
    row, prepared, outcome = item.row, item.prepared, item.outcome
    attempts = row.attempts + (1 if outcome.outcome not in ("pull", "cancelled") else 0)
    adapter = prepared.adapter.slug if prepared.adapter else None
    if outcome.outcome == "delivered":
        state = "delivered"
    elif outcome.outcome in ("pull", "cancelled"):
        state = outcome.outcome
    elif outcome.outcome == "retryable" and attempts < settings.delivery_max_attempts:
        wait = delay_seconds(
            attempts,
            base=settings.delivery_backoff_seconds,
            cap=settings.delivery_backoff_max_seconds,
            retry_after=outcome.retry_after,
        )
        kept = outbox_sql.reschedule(
            conn,
            row,
            due_at=now + timedelta(seconds=wait),
            attempts=attempts,
            endpoint_id=prepared.endpoint_id,
            adapter=adapter,
            status_code=outcome.status_code,
            error=outcome.error,
        )
        return "pending" if kept else "lost"
    else:
        state = "dead"
    kept = outbox_sql.finish(
        conn,
        row,
        state=state,
        now=now,
        attempts=attempts,
        endpoint_id=prepared.endpoint_id,
        adapter=adapter,
        status_code=outcome.status_code,
        error=outcome.error,
    )
    return state if kept else "lost"


def _disclosure(row: OutboxRow, prepared: Prepared, now: datetime) -> dict[str, Any]:
    """One AuditEvent per delivery: what went to whom, about which Patient, for what purpose."""
    event = record.build_event(
        caller=DELIVERY,
        action="disclosure",
        now=now,
        status=200,
        entities=prepared.sent,
        patients=[prepared.patient] if prepared.patient else [],
        description=f"{row.kind} delivered to Organization/{row.organization_id} by {prepared.adapter.slug}"
        if prepared.adapter
        else None,
        subtype={"system": AUDIT_SUBTYPE, "code": "disclosure"},
    )
    event["agent"].append(
        {
            "type": {"coding": [{"system": _DCM, "code": "110152", "display": "Destination Role ID"}]},
            "who": {"reference": f"Organization/{row.organization_id}"},
            "requestor": False,
            # Coordination of care: the referral is shared to arrange the person's support.
            "purposeOfUse": [
                {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "COC"}]}
            ],
        }
    )
    event["period"] = {"end": fhir_instant(now)}
    return event
