"""A fake adapter for development and tests: records what it was given, fails as scripted.

It is a real adapter (discovered through the entry point like the others, configured per Endpoint),
selected by ``connectionType`` ``https://wraparound.org.uk/fhir/CodeSystem/endpoint-connection-type#fake``.
The record lives in a module-level :data:`RECORDER` keyed by the Endpoint's ``channel`` — never on the
adapter object — so one process's tests can keep channels apart. Nothing leaves the process. The
hub refuses Endpoints of this type unless ``WRAPAROUND_ALLOW_PRIVATE_ENDPOINTS`` is set (see
``service.delivery.endpoint_rules``), so a production hub cannot be pointed at it by mistake.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    WRAPAROUND_CONNECTION_TYPE,
    ConnectionType,
    Delivery,
    MisconfiguredError,
    PermanentError,
    Receipt,
    RetryableError,
    Transport,
)

Step = Literal["ok", "retryable", "permanent", "misconfigured", "slow"]


class FakeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = "default"
    payload: Literal["bundle", "event"] = "bundle"
    # Outcomes for successive attempts on this channel, then "ok" for ever.
    script: list[Step] = Field(default_factory=list)
    retry_after: float | None = None
    slow_seconds: float = 0.0


class Recorder:
    """Thread-safe record of fake deliveries per channel, and each channel's script position."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.deliveries: dict[str, list[Delivery]] = defaultdict(list)
        self._position: dict[str, int] = defaultdict(int)

    def next_step(self, config: FakeConfig) -> Step:
        with self._lock:
            position = self._position[config.channel]
            self._position[config.channel] += 1
        return config.script[position] if position < len(config.script) else "ok"

    def record(self, channel: str, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries[channel].append(delivery)

    def of(self, channel: str) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries[channel])

    def reset(self) -> None:
        with self._lock:
            self.deliveries.clear()
            self._position.clear()


RECORDER = Recorder()


class FakeAdapter:
    slug: ClassVar[str] = "fake"
    connection_type: ClassVar[ConnectionType] = ConnectionType(WRAPAROUND_CONNECTION_TYPE, "fake")
    config_model: ClassVar[type[BaseModel]] = FakeConfig
    description: ClassVar[str] = "Records deliveries in memory and fails as scripted (development and tests)."

    def wants_bundle(self, config: FakeConfig) -> bool:
        return config.payload == "bundle"

    async def deliver(self, delivery: Delivery, config: FakeConfig, transport: Transport) -> Receipt:
        step = RECORDER.next_step(config)
        if step == "slow":
            await asyncio.sleep(config.slow_seconds)
        elif step == "retryable":
            raise RetryableError("scripted failure", status_code=503, retry_after=config.retry_after)
        elif step == "permanent":
            raise PermanentError("scripted refusal", status_code=410)
        elif step == "misconfigured":
            raise MisconfiguredError("scripted misconfiguration")
        RECORDER.record(config.channel, delivery)
        return Receipt(status_code=200, detail=f"fake:{config.channel}")
