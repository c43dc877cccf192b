"""Standard Webhooks delivery: a signed JSON POST to ``Endpoint.address``.

https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

The body is ``{"type", "timestamp", "data"}``; ``webhook-id`` is the outbox row's message id, the same
on every retry, so the receiver can deduplicate; ``webhook-timestamp`` is the time of this attempt (the
receiver's replay window is measured from it); ``webhook-signature`` holds one ``v1,<base64>`` HMAC per
unexpired secret, space-separated, which is how rotation works without a flag day: the previous secret
keeps signing until its ``not_after`` while the partner switches to the new one.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr, field_validator
from standardwebhooks.webhooks import Webhook

from adapters import _http
from adapters.base import (
    WRAPAROUND_CONNECTION_TYPE,
    ConnectionType,
    Delivery,
    MisconfiguredError,
    Receipt,
    Transport,
)

SECRET_PREFIX = "whsec_"
# Headers the signature and the framing depend on: an Endpoint.header may not replace them.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding", "host", "connection"})
# RFC 9110 section 5.6.2 token: what a header name may be.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class SigningSecret(BaseModel):
    # hide_input_in_errors: a rejected secret arrives as a plain str, which pydantic would quote.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    secret: SecretStr
    # None: the current secret. A previous secret keeps signing until this instant (rotation overlap).
    not_after: AwareDatetime | None = None

    @field_validator("secret")
    @classmethod
    def _usable(cls, value: SecretStr) -> SecretStr:
        # The library's own decoding skips any non-base64 character, so check the text strictly; the
        # spec asks for 24 to 64 random bytes. The message must never echo the secret.
        text = value.get_secret_value().removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except ValueError:
            raise ValueError("not a Standard Webhooks secret (whsec_ followed by base64)") from None
        if not 24 <= len(key) <= 64:
            raise ValueError("a signing secret must be 24 to 64 bytes")
        return value

    def signs_at(self, now: datetime) -> bool:
        return self.not_after is None or now < self.not_after


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    # "bundle": the partner's referral Bundle in data.bundle; "event": a thin notice with the Task's
    # URL, for partners that fetch the Task themselves with their own token.
    payload: Literal["bundle", "event"] = "bundle"
    secrets: list[SigningSecret] = []


def rotate(config: WebhookConfig, *, now: datetime, overlap: timedelta) -> tuple[WebhookConfig, str]:
    """The hub's ``$rotate-secret``: a new current secret, the old current one signing until
    ``now + overlap``, expired ones dropped. Returns the new config and the new secret's text."""
    if now.tzinfo is None:
        raise ValueError("rotate() needs an aware datetime")
    text = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    kept = [
        s.model_copy(update={"not_after": now + overlap}) if s.not_after is None else s
        for s in config.secrets
        if s.signs_at(now)
    ]
    fresh = SigningSecret(secret=SecretStr(text))
    return config.model_copy(update={"secrets": [fresh, *kept]}), text


def _endpoint_headers(lines: tuple[str, ...]) -> list[tuple[str, str]]:
    # Messages name the header, never its value: a value is often a credential.
    parsed: list[tuple[str, str]] = []
    for line in lines:
        name, colon, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not _TOKEN.fullmatch(name):
            raise MisconfiguredError("Endpoint.header must be 'Name: value'")
        if any(c in value for c in "\r\n\0"):
            raise MisconfiguredError(f"Endpoint.header {name!r} holds a line break")
        lowered = name.lower()
        if lowered.startswith("webhook-") or lowered in _RESERVED_HEADERS:
            raise MisconfiguredError(f"Endpoint.header {name!r} would override a delivery header")
        parsed.append((name, value))
    return parsed


def _utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:  # the hub stores UTC; never let the local zone leak in
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body(delivery: Delivery, config: WebhookConfig) -> bytes:
    data: dict[str, Any] = {"task": delivery.task_url}
    if delivery.task_status is not None:
        data["taskStatus"] = delivery.task_status
    if config.payload == "bundle" and delivery.bundle is not None:
        data["bundle"] = delivery.bundle
    # "timestamp" is when the event happened, so the body is byte-identical on every retry.
    event = {"type": delivery.event, "timestamp": _utc_iso(delivery.occurred_at), "data": data}
    return orjson.dumps(event, default=_plain)


def _plain(value: object) -> object:
    # orjson takes dicts only; a Bundle may arrive as any read-only Mapping.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)


def signed_headers(
    delivery: Delivery, config: WebhookConfig, content: bytes, *, now: datetime
) -> list[tuple[str, str]]:
    # Whole seconds, and the same instant in the header and in the signed text.
    attempt_at = datetime.fromtimestamp(int(now.timestamp()), UTC)
    text = content.decode()
    signatures = [
        Webhook(s.secret.get_secret_value()).sign(delivery.message_id, attempt_at, text)
        for s in config.secrets
        if s.signs_at(attempt_at)
    ]
    if not signatures:
        raise MisconfiguredError("no signing secret: POST Endpoint/{id}/$rotate-secret")
    return [
        *_endpoint_headers(delivery.headers),
        ("content-type", "application/json"),
        ("webhook-id", delivery.message_id),
        ("webhook-timestamp", str(int(attempt_at.timestamp()))),
        ("webhook-signature", " ".join(signatures)),
    ]


class WebhookAdapter:
    slug: ClassVar[str] = "webhook"
    connection_type: ClassVar[ConnectionType] = ConnectionType(WRAPAROUND_CONNECTION_TYPE, "webhook")
    config_model: ClassVar[type[BaseModel]] = WebhookConfig
    description: ClassVar[str] = (
        "Standard Webhooks: a signed JSON POST (the referral Bundle, or a notice with the Task's URL)"
    )

    def wants_bundle(self, config: WebhookConfig) -> bool:
        return config.payload == "bundle"

    async def deliver(self, delivery: Delivery, config: WebhookConfig, transport: Transport) -> Receipt:
        content = body(delivery, config)
        headers = httpx.Headers(signed_headers(delivery, config, content, now=datetime.now(UTC)))
        async with _http.session(transport) as http:
            reply = await _http.post(
                http, delivery.address, content=content, headers=headers, transport=transport
            )
        return _http.receipt_or_raise(reply)
