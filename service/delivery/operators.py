"""What operators do with deliveries and Endpoints: look, replay, configure, rotate secrets.

Shared by the CLI (``wraparound deliveries|endpoints``) and the FHIR API (``$rotate-secret``,
``$deliveries``), so both follow the same rules and are audited the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from adapters.base import Adapter
from adapters.registry import Registry, installed
from service.delivery import config as endpoint_config
from service.delivery.secrets import SecretBox
from service.errors import NotFound, Unprocessable
from service.fhir.instant import fhir_instant
from service.storage import outbox as outbox_sql
from service.storage.outbox import OutboxRow
from service.storage.resources import ResourceStore, Stored


def describe(row: OutboxRow) -> dict[str, Any]:
    """A delivery as operators see it: ids, state and the last error — never what was sent."""
    return {
        "id": row.id,
        "kind": row.kind,
        "recipient": f"Organization/{row.organization_id}",
        "focus": row.focus,
        "state": row.state,
        "attempts": row.attempts,
        "messageId": row.message_id,
        "created": fhir_instant(row.created_at),
        "due": fhir_instant(row.due_at),
        "finished": fhir_instant(row.finished_at) if row.finished_at else None,
        "endpoint": f"Endpoint/{row.endpoint_id}" if row.endpoint_id else None,
        "adapter": row.adapter,
        "lastStatus": row.last_status,
        "lastError": row.last_error,
    }


def endpoint_and_adapter(
    conn: Connection, endpoint_id: str, registry: Registry | None = None
) -> tuple[Stored, Adapter]:
    endpoint = ResourceStore(conn).current("Endpoint", endpoint_id)
    if endpoint is None or endpoint.deleted or endpoint.content is None:
        raise NotFound(f"Endpoint/{endpoint_id} is not known")
    coding = endpoint.content.get("connectionType") or {}
    adapter = (registry or installed()).by_connection_type(coding.get("system"), coding.get("code"))
    if adapter is None:
        raise Unprocessable(f"no adapter is installed for {coding.get('system')}#{coding.get('code')}")
    return endpoint, adapter


def configure(
    conn: Connection, endpoint_id: str, raw: Any, box: SecretBox, now: datetime
) -> tuple[Adapter, BaseModel]:
    """Validate ``raw`` with the Endpoint's adapter's own model and store it encrypted."""
    _, adapter = endpoint_and_adapter(conn, endpoint_id)
    config = endpoint_config.validate(adapter, raw)
    endpoint_config.save(conn, endpoint_id, adapter, config, box, now)
    return adapter, config


def rotate_webhook_secret(
    conn: Connection, endpoint_id: str, box: SecretBox, now: datetime, overlap: timedelta
) -> tuple[str, datetime | None]:
    """A new signing secret for a webhook Endpoint (shown once); the previous one signs until the end
    of the overlap. Returns the secret and when the previous one stops (None if there was none)."""
    from adapters.webhook import WebhookConfig, rotate

    _, adapter = endpoint_and_adapter(conn, endpoint_id)
    if adapter.slug != "webhook":
        raise Unprocessable(
            f"$rotate-secret applies to webhook Endpoints; Endpoint/{endpoint_id} uses {adapter.slug}"
        )
    current = endpoint_config.load(conn, endpoint_id, adapter, box)
    assert isinstance(current, WebhookConfig)
    had_secret = any(s.not_after is None for s in current.secrets)
    rotated, secret = rotate(current, now=now, overlap=overlap)
    endpoint_config.save(conn, endpoint_id, adapter, rotated, box, now)
    return secret, (now + overlap) if had_secret else None


def replay(conn: Connection, row_id: int, now: datetime) -> OutboxRow:
    """Put a dead letter back in the queue (a fresh attempt budget; earlier attempts stay recorded)."""
    row = outbox_sql.get(conn, row_id)
    if row is None:
        raise NotFound(f"delivery {row_id} is not known")
    if row.state != "dead":
        raise Unprocessable(f"delivery {row_id} is {row.state}; only dead letters can be retried")
    outbox_sql.replay(conn, row_id, now=now)
    replayed = outbox_sql.get(conn, row_id)
    assert replayed is not None
    return replayed
