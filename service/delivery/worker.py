"""The delivery worker: claims due outbox rows with a lease and delivers them through adapters.

Any number of workers may run against one PostgreSQL database (``wraparound worker``), and ``wraparound
serve`` runs one in-process by default. Each worker keeps ``delivery_concurrency`` deliveries in flight,
at most ``delivery_partner_concurrency`` per recipient (the bulkhead: a slow partner occupies a few slots,
never the worker), and rows of one recipient and focus go in order (the claim query holds a later row
back while an earlier one is pending). A database outage (PostgreSQL restarting) is waited out: the loop
backs off and reconnects; claims it held expire and return to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.exc import SQLAlchemyError

from adapters import _http as adapter_http
from adapters.base import SmtpSettings, Transport
from adapters.registry import Registry, installed
from service.delivery import attempt
from service.delivery.expiry import sweep_lapsed_consents
from service.delivery.secrets import SecretBox, box_for
from service.settings import Settings
from service.storage import outbox as outbox_sql
from service.storage.database import Database
from service.storage.outbox import OutboxRow

log = logging.getLogger("wraparound.delivery")


def transport_for(settings: Settings) -> Transport:
    return Transport(
        allow_private=settings.allow_private_endpoints,
        deadline_seconds=settings.delivery_deadline_seconds,
        max_response_bytes=settings.delivery_max_response_bytes,
        smtp=SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_tls,
            verify_tls=settings.smtp_verify,
            ca_file=settings.smtp_ca_file,
        ),
    )


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        name: str | None = None,
        registry: Registry | None = None,
        box: SecretBox | None = None,
    ) -> None:
        if settings.delivery_lease_seconds <= settings.delivery_deadline_seconds + 5:
            raise ValueError(
                "WRAPAROUND_DELIVERY_LEASE_SECONDS must exceed the attempt deadline by 5 s or more"
            )
        self.db = db
        self.settings = settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.registry = registry or installed()
        self.box = box or box_for(settings)
        self.transport = transport_for(settings)
        self._inflight: dict[int, tuple[OutboxRow, asyncio.Task[str]]] = {}
        self._per_recipient: Counter[str] = Counter()
        self._next_sweep = 0.0
        # While running: one pooled HTTP client lent to adapters, and the task recording results.
        self._http: httpx.AsyncClient | None = None
        self._lent = self.transport
        self._results: asyncio.Queue[tuple[attempt.Settled, asyncio.Future[str]] | None] = asyncio.Queue()
        self._recorder: asyncio.Task[None] | None = None
        self.delivered = 0  # counters for operators and benchmarks
        self.failed = 0

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish or release what is in flight."""
        log.info("delivery worker %s started", self.name)
        await self._open()
        outage = 0.0
        try:
            while not stop.is_set():
                try:
                    await self._maybe_sweep()
                    claimed = await self._claim_batch()
                    outage = 0.0
                except SQLAlchemyError as exc:
                    outage = min(max(outage * 2, 0.5), 10.0)
                    log.warning(
                        "delivery worker: database unavailable (%s); retrying in %.1fs",
                        type(exc).__name__,
                        outage,
                    )
                    await self._wait(stop, outage)
                    continue
                if claimed == 0 or len(self._inflight) >= self.settings.delivery_concurrency:
                    await self._wait(stop, self.settings.delivery_poll_seconds)
        finally:
            await self._drain()
            await self._close()
            log.info("delivery worker %s stopped", self.name)

    async def run_until_idle(self, timeout: float = 30.0) -> None:
        """Deliver everything due now and wait for it (tests, ``wraparound worker --once``)."""
        await self._open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while loop.time() < deadline:
                claimed = await self._claim_batch()
                if self._inflight:
                    await asyncio.wait(
                        [t for _, t in self._inflight.values()], return_when=asyncio.FIRST_COMPLETED
                    )
                elif claimed == 0:
                    return
        finally:
            await self._drain()
            await self._close()

    async def _open(self) -> None:
        if self._http is None:
            # Connections are reused across deliveries; each new one is still vetted and pinned.
            self._http = adapter_http.client(
                self.transport, max_connections=self.settings.delivery_concurrency
            )
            self._lent = replace(self.transport, http=self._http)
        if self._recorder is None:
            self._recorder = asyncio.create_task(self._record_results(), name="delivery-results")

    async def _close(self) -> None:
        if self._recorder is not None:
            await self._results.put(None)
            await self._recorder
            self._recorder = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._lent = self.transport

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(stop.wait())]
        waiters += [t for _, t in self._inflight.values()]  # type: ignore[misc]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters[0].cancel()

    # -- claiming --------------------------------------------------------------------------------
    async def _claim_batch(self) -> int:
        """Claim what is due, up to the free slots, never past a recipient's bulkhead; start it."""
        started = 0
        cap = self.settings.delivery_partner_concurrency
        while (free := self.settings.delivery_concurrency - len(self._inflight)) > 0:
            saturated = [org for org, n in self._per_recipient.items() if n >= cap]
            rows = await asyncio.to_thread(self._claim, free, saturated)
            keep, back = [], []
            for row in rows:
                if self._per_recipient[row.organization_id] >= cap:
                    back.append(row)
                else:
                    self._per_recipient[row.organization_id] += 1
                    keep.append(row)
            if back:  # claimed past a bulkhead in this batch: hand them straight back
                await asyncio.to_thread(self._release, back)
            if keep:
                try:
                    prepared = await asyncio.to_thread(
                        attempt.prepare_many, self.db, keep, self.settings, self.registry, self.box
                    )
                except SQLAlchemyError:
                    for row in keep:  # their leases expire and they are claimed again
                        self._forget(row)
                    raise
                for row, ready in zip(keep, prepared, strict=True):
                    task = asyncio.create_task(self._deliver(row, ready), name=f"delivery-{row.id}")
                    self._inflight[row.id] = (row, task)
                    task.add_done_callback(self._finished(row))
                started += len(keep)
            if not back:
                break  # nothing was held back, so nothing else is claimable for a free slot now
        return started

    def _finished(self, row: OutboxRow) -> Callable[[asyncio.Task[str]], None]:
        def done(_task: asyncio.Task[str]) -> None:
            self._inflight.pop(row.id, None)
            self._forget(row)

        return done

    def _forget(self, row: OutboxRow) -> None:
        self._per_recipient[row.organization_id] -= 1
        if self._per_recipient[row.organization_id] <= 0:
            del self._per_recipient[row.organization_id]

    def _claim(self, limit: int, saturated: list[str]) -> list[OutboxRow]:
        now = datetime.now(UTC)
        with self.db.transaction(write=True) as conn:
            return outbox_sql.claim(
                conn,
                worker=self.name,
                now=now,
                lease_until=now + timedelta(seconds=self.settings.delivery_lease_seconds),
                limit=limit,
                exclude_recipients=saturated,
            )

    def _release(self, rows: list[OutboxRow]) -> int:
        with self.db.transaction(write=True) as conn:
            return outbox_sql.release(conn, rows)

    # -- one delivery ----------------------------------------------------------------------------
    async def _deliver(self, row: OutboxRow, prepared: attempt.Prepared) -> str:
        started_at = datetime.now(UTC)
        if prepared.state == "error":
            outcome = attempt.Outcome("retryable", error=prepared.reason)
        elif prepared.state == "send":
            outcome = await attempt.send(prepared, self.settings, self._lent)
        elif prepared.state == "dead":
            outcome = attempt.Outcome("misconfigured", error=prepared.reason)
        else:
            outcome = attempt.Outcome(prepared.state, error=prepared.reason)
        recorded: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self._results.put((attempt.Settled(row, prepared, outcome, started_at), recorded))
        state = await recorded
        if state == "delivered":
            self.delivered += 1
        elif state in ("dead", "pending"):
            self.failed += 1
        return state

    async def _record_results(self) -> None:
        """Write finished attempts in batches: whatever finished while the last batch was being written
        goes in one transaction (group commit), so a busy worker commits far less than once per delivery."""
        while True:
            first = await self._results.get()
            if first is None:
                return
            batch = [first]
            closing = False
            while len(batch) < 256:
                try:
                    item = self._results.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            try:
                states = await asyncio.to_thread(
                    attempt.settle_many,
                    self.db,
                    [settled for settled, _ in batch],
                    worker=self.name,
                    settings=self.settings,
                )
            except SQLAlchemyError as exc:
                # Not recorded: the claims expire and the rows are delivered again (at least once).
                log.warning(
                    "delivery worker: could not record %d result(s) (%s)", len(batch), type(exc).__name__
                )
                states = ["lost"] * len(batch)
            for (_, recorded), state in zip(batch, states, strict=True):
                if not recorded.done():
                    recorded.set_result(state)
            if closing:
                return

    async def _drain(self) -> None:
        """Graceful shutdown: let in-flight deliveries finish (up to the deadline), release the rest."""
        if not self._inflight:
            return
        tasks = [t for _, t in self._inflight.values()]
        _, pending = await asyncio.wait(tasks, timeout=self.settings.delivery_deadline_seconds + 2)
        unfinished = [row for row, t in list(self._inflight.values()) if t in pending]
        for task in pending:
            task.cancel()
        if unfinished:
            try:
                await asyncio.to_thread(self._release, unfinished)
            except SQLAlchemyError as exc:  # their leases expire instead
                log.warning("delivery worker: could not release claims (%s)", type(exc).__name__)

    async def _maybe_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_sweep:
            return
        self._next_sweep = loop.time() + self.settings.consent_sweep_seconds
        cancelled = await asyncio.to_thread(sweep_lapsed_consents, self.db, self.settings)
        if cancelled:
            log.info("consent sweep: %d open Task(s) cancelled because their consent lapsed", cancelled)
