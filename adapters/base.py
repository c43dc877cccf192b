"""The adapter contract: what the hub hands an adapter, and what the adapter hands back.

An adapter serves one ``Endpoint.connectionType``. The delivery worker (``service.delivery``) reads
the outbox, builds a :class:`Delivery` (ids, the recipient's address, and for payload-carrying
events the partner's minimised transaction Bundle), validates the Endpoint's configuration with the
adapter's own pydantic model, and awaits ``deliver``. The adapter either returns a :class:`Receipt`
or raises one of the typed :class:`DeliveryError` subclasses; the worker turns that into a retry
with backoff, a dead letter, or an operator-facing misconfiguration.

Adapters never touch storage and keep no per-call state on the shared adapter object: everything
one attempt needs arrives as arguments (import-linter forbids ``service.storage`` here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

# http://hl7.org/fhir/R4/valueset-endpoint-connection-type.html
HL7_CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
WRAPAROUND_CONNECTION_TYPE = "https://wraparound.org.uk/fhir/CodeSystem/endpoint-connection-type"

# What a delivery is about. Payload-carrying events hold the partner's view of the referral; the
# others are notices with ids only (no clinical detail), e.g. a withdrawal of consent.
EventKind = Literal["referral.created", "task.updated", "consent.withdrawn", "consent.expired"]


@dataclass(frozen=True)
class ConnectionType:
    system: str
    code: str

    def __str__(self) -> str:
        return f"{self.system}#{self.code}"


@dataclass(frozen=True)
class SmtpSettings:
    """The hub's mail relay (``WRAPAROUND_SMTP_*``)."""

    host: str | None = None
    port: int = 25
    sender: str = "wraparound@localhost"
    username: str | None = None
    password: str | None = None
    # "auto": STARTTLS when the server offers it; "require": refuse to send without it; "off".
    starttls: Literal["auto", "require", "off"] = "auto"
    # Implicit TLS (SMTPS, port 465) instead of STARTTLS.
    use_tls: bool = False
    # Verify the relay's certificate (off only for a development relay with a self-signed certificate).
    verify_tls: bool = True
    ca_file: str | None = None


@dataclass(frozen=True)
class Transport:
    """What the hub lends an adapter for one attempt: network rules and limits, never state."""

    allow_private: bool  # WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS (development and tests only)
    deadline_seconds: float  # the total time one attempt may take, connect to last byte
    max_response_bytes: int  # a response body larger than this is cut off (and is an error)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    user_agent: str = "wraparound-delivery"
    # A pooled client the worker lends for the whole run (built by ``adapters.client``: pinned, no
    # redirects). Adapters take it through ``adapters.session(transport)``, which falls back to a client
    # of their own; never store it on the adapter.
    http: httpx.AsyncClient | None = None


@dataclass(frozen=True)
class Delivery:
    """One attempt at one outbox row. ``message_id`` is the same on every retry of that row."""

    message_id: str  # e.g. "msg_2f1c...": the webhook-id and the receiver's idempotency key
    event: EventKind
    attempt: int  # 1 on the first try
    address: str  # Endpoint.address (https URL, or mailto: for email)
    recipient: str  # "Organization/<id>": who this is for
    task: str  # "Task/<id>" at the hub
    task_url: str  # the Task's absolute URL at the hub (where a partner that pulls fetches it)
    collect_url: str  # where a person collects the referral (for notices that carry nothing)
    hub_base: str  # the hub's FHIR base URL
    occurred_at: datetime  # when the change that caused the delivery was committed
    task_status: str | None = None
    # The partner's (or clinic's) view as a FHIR transaction Bundle, already minimised and checked
    # against consent; None for notices (withdrawal, expiry) and for adapters that do not want it.
    bundle: Mapping[str, Any] | None = None
    # Endpoint.header entries ("Name: value"), for receivers that want a fixed header.
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """A delivery the recipient accepted."""

    status_code: int | None = None  # the HTTP status, or the SMTP reply code
    detail: str = ""  # short and free of clinical data (e.g. the receiver's message id)


class DeliveryError(Exception):
    """A failed attempt. Subclasses say what the worker should do with it.

    ``message`` must carry no clinical data or secrets: it is stored with the attempt and shown to
    operators.
    """

    outcome: ClassVar[str] = "failed"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RetryableError(DeliveryError):
    """Try again later (timeouts, 408, 429, 5xx); ``retry_after`` seconds when the receiver said."""

    outcome = "retryable"

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """The receiver refused this delivery for good (most 4xx): dead-letter it now."""

    outcome = "permanent"


class MisconfiguredError(DeliveryError):
    """The Endpoint or its configuration cannot work (no secret, bad address, refused address).

    Dead-lettered at once like a permanent error, but reported as the operator's to fix; a retry
    after fixing the configuration replays it.
    """

    outcome = "misconfigured"


@runtime_checkable
class Adapter(Protocol):
    """A delivery adapter. Register it in the ``wraparound.adapters`` entry-point group."""

    slug: ClassVar[str]  # short name, e.g. "webhook" (the entry point's name)
    connection_type: ClassVar[ConnectionType]
    config_model: ClassVar[type[BaseModel]]  # per-Endpoint configuration; SecretStr for secrets
    description: ClassVar[str]

    def wants_bundle(self, config: Any) -> bool:
        """Whether this Endpoint's deliveries carry the referral Bundle (else ids only)."""
        ...

    async def deliver(self, delivery: Delivery, config: Any, transport: Transport) -> Receipt:
        """Send one delivery; return a receipt or raise a :class:`DeliveryError`."""
        ...
