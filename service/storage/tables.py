"""Database tables.

Resources are stored as JSON (JSONB on PostgreSQL) in ``resource`` (current version)
and ``resource_history`` (every version); search parameters are extracted on every
write into one index table per parameter type, in the same transaction, so that
searches are SQL over indexes, never JSON scans (docs/adr/0002-storage-layout.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    Numeric,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
RowId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps always in UTC and always timezone-aware, on SQLite as on PostgreSQL.

    SQLite has no time zone type and hands back naive values; they were written as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite's DATETIME formats a dict of the fields with "%"; isoformat writes the same text
        # ("2026-01-31 12:00:00.000000", SQLAlchemy's storage format) in about half the time, and
        # every request binds three or four timestamps (tests/storage/test_tables.py).
        def process(value: datetime | None) -> str | None:
            utc = self.process_bind_param(value, dialect)
            return None if utc is None else utc.isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc() -> Column[Any]:
    return Column(UtcDateTime(), nullable=False)


class Resource(SQLModel, table=True):
    """The current version of every resource (deleted ones keep a tombstone row)."""

    __tablename__ = "resource"
    __table_args__ = (
        UniqueConstraint("resource_type", "id", name="uq_resource_type_id"),
        Index("ix_resource_type_updated", "resource_type", "last_updated"),
    )

    rid: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    resource_type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    version_id: int
    last_updated: datetime = Field(sa_column=_utc())
    deleted: bool = False
    content: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDoc, nullable=True))


class ResourceHistory(SQLModel, table=True):
    """Every version of every resource, including deletions (content is null)."""

    __tablename__ = "resource_history"
    __table_args__ = (Index("ix_history_type_updated", "resource_type", "last_updated"),)

    rid: int = Field(sa_column=Column(RowId, primary_key=True, autoincrement=False))
    version_id: int = Field(primary_key=True)
    resource_type: str = Field(max_length=64)
    id: str = Field(max_length=64)
    last_updated: datetime = Field(sa_column=_utc())
    method: str = Field(max_length=8)  # POST, PUT, DELETE
    content: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDoc, nullable=True))


class IdxToken(SQLModel, table=True):
    __tablename__ = "idx_token"
    __table_args__ = (
        Index("ix_idx_token_lookup", "resource_type", "param", "code", "system", "rid"),
        Index("ix_idx_token_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    system: str | None = None
    code: str | None = None
    text: str | None = None


class IdxString(SQLModel, table=True):
    __tablename__ = "idx_string"
    __table_args__ = (
        Index("ix_idx_string_lookup", "resource_type", "param", "value", "rid"),
        Index("ix_idx_string_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: str
    exact: str


class IdxDate(SQLModel, table=True):
    __tablename__ = "idx_date"
    __table_args__ = (
        Index("ix_idx_date_lookup", "resource_type", "param", "low", "high", "rid"),
        Index("ix_idx_date_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    low: datetime = Field(sa_column=_utc())
    high: datetime = Field(sa_column=_utc())


_HAS_URL = text("url IS NOT NULL")


class IdxReference(SQLModel, table=True):
    __tablename__ = "idx_reference"
    __table_args__ = (
        Index("ix_idx_reference_lookup", "resource_type", "param", "target_id", "target_type", "rid"),
        # Only absolute and canonical references have a url; a relative Type/id one (most) has none,
        # and a search by url (url = ...) implies url IS NOT NULL, so the partial index serves it.
        Index(
            "ix_idx_reference_url",
            "resource_type",
            "param",
            "url",
            "rid",
            sqlite_where=_HAS_URL,
            postgresql_where=_HAS_URL,
        ),
        Index("ix_idx_reference_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    target_type: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=64)
    url: str | None = None
    version: str | None = None


class IdxNumber(SQLModel, table=True):
    """Quantity and number parameters."""

    __tablename__ = "idx_number"
    __table_args__ = (
        Index("ix_idx_number_lookup", "resource_type", "param", "value", "rid"),
        Index("ix_idx_number_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: Decimal = Field(sa_column=Column(Numeric(30, 10), nullable=False))
    system: str | None = None
    code: str | None = None
    unit: str | None = None


class IdxUri(SQLModel, table=True):
    __tablename__ = "idx_uri"
    __table_args__ = (
        Index("ix_idx_uri_lookup", "resource_type", "param", "value", "rid"),
        Index("ix_idx_uri_rid", "rid"),
    )

    pk: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    rid: int = Field(sa_column=Column(RowId, nullable=False))
    resource_type: str = Field(max_length=64)
    param: str = Field(max_length=64)
    value: str


class AuditIndex(SQLModel, table=True):
    """An AuditEvent's single-valued search values, one row per event (docs/adr/0017-audit-index.md).

    Every access writes an AuditEvent, and its nine generic index rows were most of what a read cost
    the database (bytes written, B-trees entered). Here the first row of each of these parameters is
    a group of columns, verbatim (``<param>_<field>``); any further row of one, and rows of the other
    parameters, go to ``audit_entity`` or the generic index tables. ``service/storage/audit_index.py``
    turns the three back into generic index rows for search.
    """

    __tablename__ = "audit_index"
    __table_args__ = (
        Index("ix_audit_index_date", "date_low", "date_high"),
        Index("ix_audit_index_altid", "altid_code"),
        Index("ix_audit_index_agent", "agent_target_id", "agent_target_type"),
    )

    rid: int = Field(sa_column=Column(RowId, primary_key=True, autoincrement=False))
    date_low: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    date_high: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    type_system: str | None = None
    type_code: str | None = None
    type_text: str | None = None
    subtype_system: str | None = None
    subtype_code: str | None = None
    subtype_text: str | None = None
    action_system: str | None = None
    action_code: str | None = None
    action_text: str | None = None
    outcome_system: str | None = None
    outcome_code: str | None = None
    outcome_text: str | None = None
    altid_system: str | None = None
    altid_code: str | None = None
    altid_text: str | None = None
    agent_target_type: str | None = Field(default=None, max_length=64)
    agent_target_id: str | None = Field(default=None, max_length=64)
    agent_url: str | None = None
    agent_version: str | None = None


class AuditEntity(SQLModel, table=True):
    """What an AuditEvent was about (its ``entity`` and ``patient`` references, ``Type/id`` only):
    many per event (a search names every Patient it returned), clustered on the lookup an audit
    review makes (who touched this Patient), with no other index (docs/adr/0017-audit-index.md)."""

    __tablename__ = "audit_entity"
    __table_args__ = {"sqlite_with_rowid": False}

    param: str = Field(primary_key=True, max_length=64)
    target_id: str = Field(primary_key=True, max_length=64)
    target_type: str = Field(primary_key=True, max_length=64)
    rid: int = Field(sa_column=Column(RowId, primary_key=True, autoincrement=False))


class ResourceAccess(SQLModel, table=True):
    """Which organisations may see a resource, and why (maintained on write).

    The visibility layer joins searches to this table, so paging and totals are
    computed over what the caller may see (docs/adr/0006-tenancy.md).
    """

    __tablename__ = "resource_access"
    __table_args__ = (Index("ix_resource_access_lookup", "organization_id", "rid", "valid_until"),)

    rid: int = Field(sa_column=Column(RowId, primary_key=True, autoincrement=False))
    organization_id: str = Field(primary_key=True, max_length=64)
    reason: str = Field(primary_key=True, max_length=64)  # e.g. "author", "referral:<ServiceRequest id>"
    # When the grant lapses by itself (the end of the permitting Consent's period); null: never.
    valid_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))


class Outbox(SQLModel, table=True):
    """Something that must be sent, written in the transaction that caused it (docs/adr/0004-outbox.md).

    ``state`` is pending (waiting or claimed), delivered, pull (no Endpoint: the recipient pulls),
    cancelled (consent withdrawn or the referral closed before it went) or dead (dead letter). A worker's
    claim is a lease (``lease_owner``, ``lease_until``) plus a fencing token (``fence``, bumped on every
    claim): an acknowledgement that names an old fence changes nothing.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_due", "state", "due_at"),
        # Ordering: a row waits for earlier pending rows of the same recipient and focus.
        Index("ix_outbox_stream", "organization_id", "focus", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    kind: str = Field(max_length=64)  # e.g. "referral.created", "consent.withdrawn"
    organization_id: str = Field(max_length=64)  # the recipient organisation
    focus: str = Field(max_length=200)  # e.g. "Task/abc"
    payload: dict[str, Any] = Field(sa_column=Column(JsonDoc, nullable=False))
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = Field(sa_column=_utc())
    due_at: datetime = Field(sa_column=_utc())
    # The idempotency key the recipient sees on every retry (webhook-id, Message-ID).
    message_id: str | None = Field(default=None, max_length=64)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    fence: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    endpoint_id: str | None = Field(default=None, max_length=64)  # the Endpoint of the last attempt
    adapter: str | None = Field(default=None, max_length=64)
    last_status: int | None = None  # HTTP status or SMTP reply of the last attempt
    last_error: str | None = Field(default=None, max_length=300)  # error class and message, no clinical data


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt at an outbox row: when, how long, and how it ended (never what was sent)."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (Index("ix_delivery_attempt_outbox", "outbox_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(RowId, primary_key=True, autoincrement=True))
    outbox_id: int = Field(sa_column=Column(RowId, nullable=False))
    attempt: int
    started_at: datetime = Field(sa_column=_utc())
    duration_ms: float
    outcome: str = Field(max_length=16)  # delivered, retryable, permanent, misconfigured, pull, cancelled
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=300)
    worker: str = Field(max_length=64)
    endpoint_id: str | None = Field(default=None, max_length=64)


class EndpointConfig(SQLModel, table=True):
    """An Endpoint's adapter configuration, encrypted at rest as a whole (docs/adr/0007-secrets.md).

    Kept out of the Endpoint resource so secrets never appear in FHIR reads, history or searches.
    """

    __tablename__ = "endpoint_config"

    endpoint_id: str = Field(primary_key=True, max_length=64)
    adapter: str = Field(max_length=64)
    ciphertext: str  # Fernet token of the configuration JSON
    updated_at: datetime = Field(sa_column=_utc())


class OAuthClient(SQLModel, table=True):
    __tablename__ = "oauth_client"

    client_id: str = Field(primary_key=True, max_length=200)
    organization_id: str = Field(max_length=64)
    role: str = Field(max_length=16)
    scopes: str
    jwks: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDoc, nullable=True))
    jwks_url: str | None = None
    created_at: datetime = Field(sa_column=_utc())


class AssertionJti(SQLModel, table=True):
    """Seen client-assertion ``jti`` values; the primary key makes a replay race lose."""

    __tablename__ = "assertion_jti"

    client_id: str = Field(primary_key=True, max_length=200)
    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(sa_column=_utc())


class AccessToken(SQLModel, table=True):
    """Opaque access tokens, stored as SHA-256 hashes (docs/adr/0005-access-tokens.md)."""

    __tablename__ = "access_token"
    __table_args__ = (Index("ix_access_token_expires", "expires_at"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=200)
    organization_id: str = Field(max_length=64)
    role: str = Field(max_length=16)
    scopes: str
    jti: str = Field(max_length=64)
    expires_at: datetime = Field(sa_column=_utc())


# -- people who sign in to the web app (service/web/, docs/adr/0013-web-app.md) ------------------------


class WebUser(SQLModel, table=True):
    """A person at a partner or clinic. The password is an Argon2 hash; the TOTP secret is sealed
    (Fernet, WRAPAROUND_SECRET_KEY) because the hub must read it back to check a code."""

    __tablename__ = "web_user"
    __table_args__ = (UniqueConstraint("email", name="uq_web_user_email"),)

    id: str = Field(primary_key=True, max_length=32)
    email: str = Field(max_length=320)  # lower-cased
    organization_id: str = Field(max_length=64)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=255)
    totp_secret: str  # sealed
    totp_last_step: int = 0  # the last time step accepted: a code signs in once (RFC 6238 section 5.2)
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class WebRecoveryCode(SQLModel, table=True):
    """One-time recovery codes (SHA-256 of a random code of about 59 bits), each deleted when used."""

    __tablename__ = "web_recovery_code"

    user_id: str = Field(primary_key=True, max_length=32)
    code_hash: str = Field(primary_key=True, max_length=64)


class WebSession(SQLModel, table=True):
    """Server-side sessions: the cookie holds a random token, the row its SHA-256 (sign-out deletes it)."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_user", "user_id"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=32)
    created_at: datetime = Field(sa_column=_utc())
    last_seen_at: datetime = Field(sa_column=_utc())
    expires_at: datetime = Field(sa_column=_utc())  # the absolute timeout


class WebSigninFailure(SQLModel, table=True):
    """Failed sign-ins per email, kept for any email typed (an account or not), so a lockout says
    nothing about whether an account exists."""

    __tablename__ = "web_signin_failure"

    email_hash: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=Column(UtcDateTime(), nullable=True))
    updated_at: datetime = Field(sa_column=_utc())
