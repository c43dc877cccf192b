"""Settings: every one is an environment variable prefixed ``WRAPAROUND_`` (listed in README.md)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WRAPAROUND_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///wraparound.db", description="SQLAlchemy URL of the database."
    )
    base_url: str | None = Field(
        default=None, description="Public base URL (default http://HOST:PORT); /fhir is appended."
    )
    host: str = Field(default="127.0.0.1", description="Bind address for `wraparound serve`.")
    port: int = Field(default=8000, description="Port for `wraparound serve`.")
    workers: int = Field(
        default=1, description="API processes `wraparound serve` runs (`--workers` overrides it)."
    )
    header_timeout_seconds: float = Field(
        default=10.0, description="Time a client has to send a request's line and headers (then 408, closed)."
    )
    body_timeout_seconds: float = Field(
        default=20.0, description="Time a request body has to arrive, extended as it comes (then 408)."
    )
    body_min_bytes_per_second: int = Field(
        default=500, description="Each this many body bytes received extend the body's time by a second."
    )
    body_max_seconds: float = Field(
        default=120.0, description="Longest a request body may take however steadily it arrives."
    )
    max_connections: int = Field(
        default=1000, description="Open connections per API process before requests get 503 (0: no cap)."
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, description="Largest request body accepted (413 above)."
    )
    max_json_depth: int = Field(default=64, description="Deepest JSON nesting accepted in a request body.")
    max_json_items: int = Field(
        default=200_000, description="Most JSON values (all levels) in a request body."
    )
    access_token_lifetime: int = Field(default=300, description="Access token lifetime in seconds.")
    assertion_leeway_seconds: int = Field(default=60, description="Clock leeway for client assertions.")
    allow_rs512: bool = Field(default=False, description="Also accept RS512 client assertions.")
    allow_private_endpoints: bool = Field(
        default=False,
        description="Allow JWKS and delivery URLs on loopback/private addresses (dev and tests).",
    )
    rate_limit: str = Field(
        default="600/minute", description="Per-client API rate limit, per API process: COUNT/UNIT."
    )
    token_rate_limit: str = Field(default="60/minute", description="Per-client token endpoint rate limit.")
    log_level: str = Field(default="INFO", description="Logging level.")
    docs: bool = Field(
        default=True, description="Serve /docs, /redoc and /openapi.json (turn off in production if wanted)."
    )
    development: bool = Field(
        default=False,
        description="Development mode: without WRAPAROUND_SECRET_KEY a key is kept in wraparound.secret-key.",
    )
    secret_key: str | None = Field(
        default=None,
        description=(
            "Fernet key(s) encrypting adapter secrets at rest, comma-separated, newest first "
            "(make one: `wraparound secrets generate-key`). Required outside development mode."
        ),
    )
    delivery_max_attempts: int = Field(default=10, description="Delivery attempts before dead-lettering.")
    delivery_backoff_seconds: float = Field(default=5.0, description="Base of exponential delivery backoff.")
    delivery_backoff_max_seconds: float = Field(default=3600.0, description="Longest wait between attempts.")
    delivery_deadline_seconds: float = Field(
        default=15.0, description="Total time one delivery attempt may take (connect to last byte)."
    )
    delivery_lease_seconds: float = Field(
        default=60.0, description="How long a worker's claim on a delivery lasts before another may take it."
    )
    delivery_max_response_bytes: int = Field(
        default=1024 * 1024, description="Largest receiver response read during a delivery."
    )
    delivery_concurrency: int = Field(default=16, description="Deliveries in flight per worker.")
    delivery_partner_concurrency: int = Field(
        default=4, description="Deliveries in flight per recipient per worker (a slow partner's bulkhead)."
    )
    delivery_poll_seconds: float = Field(default=0.5, description="How often an idle worker looks for work.")
    consent_sweep_seconds: float = Field(
        default=60.0, description="How often the worker cancels open Tasks whose permitting Consent lapsed."
    )
    webhook_secret_overlap_seconds: int = Field(
        default=86400, description="How long the previous webhook secret still signs after $rotate-secret."
    )
    collect_url: str | None = Field(
        default=None, description="Where people collect referrals (default BASE_URL/app/), named in emails."
    )
    web_session_idle_minutes: int = Field(
        default=30, description="Web app: a session ends after this many minutes without a request."
    )
    web_session_max_hours: float = Field(
        default=12.0, description="Web app: a session ends this many hours after sign-in, however busy."
    )
    first_contact_working_days: int = Field(
        default=5,
        description="Web app: working days (Mon-Fri) within which a partner first contacts the person.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay for secure-email delivery.")
    smtp_port: int = Field(default=25, description="SMTP relay port.")
    smtp_from: str = Field(default="wraparound@localhost", description="Sender address of delivery emails.")
    smtp_username: str | None = Field(default=None, description="SMTP user name (optional).")
    smtp_password: str | None = Field(default=None, description="SMTP password (optional; never logged).")
    smtp_starttls: Literal["auto", "require", "off"] = Field(
        default="auto", description="STARTTLS: when offered (auto), always (require), or never (off)."
    )
    smtp_tls: bool = Field(default=False, description="Implicit TLS (SMTPS, usually port 465).")
    smtp_verify: bool = Field(default=True, description="Verify the SMTP relay's TLS certificate.")
    smtp_ca_file: str | None = Field(
        default=None, description="CA bundle (PEM) for a relay whose certificate a private CA issued."
    )

    def public_base(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    def fhir_base(self) -> str:
        return f"{self.public_base()}/fhir"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
