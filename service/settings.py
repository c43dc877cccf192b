"""Settings: every one is an environment variable prefixed ``WRAPAROUND_`` (listed in README.md)."""

from __future__ import annotations

from functools import lru_cache

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
    rate_limit: str = Field(default="600/minute", description="Per-client API rate limit (limits syntax).")
    token_rate_limit: str = Field(default="60/minute", description="Per-client token endpoint rate limit.")
    log_level: str = Field(default="INFO", description="Logging level.")
    delivery_max_attempts: int = Field(default=10, description="Delivery attempts before dead-lettering.")
    delivery_backoff_seconds: float = Field(default=5.0, description="Base of exponential delivery backoff.")

    def fhir_base(self) -> str:
        base = (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")
        return f"{base}/fhir"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
