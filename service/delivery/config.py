"""An Endpoint's adapter configuration: validated by the adapter's own model, stored encrypted.

The configuration (payload choice, dropped elements, webhook signing secrets, partner OAuth keys) lives
in ``endpoint_config``, never in the Endpoint resource, so no FHIR read, history or search can return a
secret. Operators set it with ``wraparound endpoints configure``; webhook secrets come from
``$rotate-secret`` and are shown once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from sqlalchemy import Connection

from adapters.base import Adapter
from service.delivery.secrets import SecretBox
from service.errors import Unprocessable
from service.storage import outbox as outbox_sql


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    if isinstance(value, BaseModel):
        return {k: _reveal(v) for k, v in value if v is not None}
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_reveal(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def masked(config: BaseModel) -> dict[str, Any]:
    """The configuration for display: secrets shown as '**********' (pydantic's own masking)."""
    shown: dict[str, Any] = json.loads(config.model_dump_json(exclude_none=True))
    return shown


def validate(adapter: Adapter, raw: Any) -> BaseModel:
    try:
        return adapter.config_model.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise Unprocessable(f"invalid {adapter.slug} configuration: {problems}") from None


def load(conn: Connection, endpoint_id: str, adapter: Adapter, box: SecretBox) -> BaseModel:
    """The Endpoint's configuration for ``adapter`` (defaults when none is stored, or it was for another)."""
    found = outbox_sql.get_config(conn, endpoint_id)
    if found is None or found[0] != adapter.slug:
        return validate(adapter, {})
    return validate(adapter, json.loads(box.open(found[1])))


def save(
    conn: Connection, endpoint_id: str, adapter: Adapter, config: BaseModel, box: SecretBox, now: datetime
) -> None:
    plaintext = json.dumps(_reveal(config), separators=(",", ":")).encode()
    outbox_sql.put_config(conn, endpoint_id, adapter=adapter.slug, ciphertext=box.seal(plaintext), now=now)
