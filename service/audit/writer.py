"""The audit writer: one per API process, committing the AuditEvents of many requests at once.

The rule is unchanged: no response leaves before its AuditEvent is committed (ADR 0012). What
changes is who commits it. A read-only interaction runs in a read transaction, then hands its
events here and waits for the commit of the batch they went into. A single thread takes
whatever is queued (up to ``max_batch`` requests), writes it as multi-row inserts in one write
transaction and commits, then resolves every waiting request at once. There is no linger: an
event that arrives alone is committed at once, and while one batch commits the next fills up,
so under load one commit serves many requests (group commit, as in a database's own log).

Requests in Starlette's threadpool wait on a ``concurrent.futures.Future`` (``record``); the hot
path's coroutines await a future of their own event loop (``commit``), which the writer settles for
the whole batch in one callback on that loop. If a
batch fails, every request in it gets 503 (``ServiceUnavailable``, ``Retry-After``) and none of
them sends its body. ``close`` drains what is queued before the process exits.

On SQLite a coroutine's events are committed on its own event loop instead (ADR 0018): the events
of every coroutine that reaches ``commit`` in the same few turns of the loop go in one write
transaction, run by a callback, if the write lock is free at that instant
(``Database.write_if_free``). If it is not, the batch goes to the thread as above, so the loop never
waits for a lock. The callback waits a turn more while the last turn brought more events, up to
``GATHER_TURNS`` turns: each turn reads what the sockets have brought, so under load the requests
that arrive while the batch gathers join it, and an event alone waits one idle turn. Handing a
thread each batch cost more than the batch: every SQLite call releases the GIL, and winning it back
from a busy event loop cost about 75 µs of CPU on this VM. The loop's commits make no checkpoints;
every ``database.CHECKPOINT_EVERY`` commits on the loop (its own and the hot path's writes, ADR 0020)
the thread runs one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from service.audit.record import audit_rows
from service.errors import ServiceUnavailable
from service.storage.audit_index import SplitRows
from service.storage.database import Database
from service.storage.resources import ResourceStore

log = logging.getLogger("wraparound.audit")

# A request gives up waiting after this long (the batch is then still in flight or stuck).
WAIT_SECONDS = 30.0
# SQLite: the most turns of the event loop a batch waits for more events before it commits. Over
# HTTP, at 16 connections, committing at the end of the first turn gave batches of 7 events on
# average; waiting while events kept arriving gave 16 (docs/PERFORMANCE.md).
GATHER_TURNS = 4
RETRY_AFTER = "1"


@dataclass(frozen=True)
class _Pending:
    events: list[tuple[dict[str, Any], SplitRows]]
    done: Future[None] | None = None  # a thread waits on it (record, submit)
    waiter: asyncio.Future[None] | None = None  # a coroutine awaits it on its event loop (commit)


@dataclass(frozen=True)
class _Turn:
    """An event loop's batch while it gathers (``AuditWriter._join_turn``), and its deadline."""

    batch: list[_Pending]
    deadline: asyncio.TimerHandle


class _Checkpoint:
    """Queued for the thread: checkpoint SQLite's WAL (after the loops' commits)."""


_CHECKPOINT = _Checkpoint()


class AuditWriter:
    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | _Checkpoint | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        # SQLite: each event loop's batch for the end of its current turn (touched only on that loop).
        self._on_loop = db.dialect == "sqlite"
        self._turn: dict[asyncio.AbstractEventLoop, _Turn] = {}
        db.on_checkpoint_due(self._checkpoint_soon)

    def record(self, events: Sequence[dict[str, Any]], *, timeout: float = WAIT_SECONDS) -> None:
        """Return once ``events`` are committed; ``ServiceUnavailable`` (503) if they were not."""
        if not events:
            return
        with _committed_or_unavailable(timeout):
            self.submit(events).result(timeout)

    async def commit(self, events: Sequence[dict[str, Any]], *, timeout: float = WAIT_SECONDS) -> None:
        """``record`` for a coroutine: the event loop goes on serving while the batch commits.

        It awaits a future of its own loop, which the writer settles together with the rest of its
        batch in one ``call_soon_threadsafe`` (a thread future wrapped per request cost a wake-up of
        the loop per request)."""
        if not events:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with _committed_or_unavailable(timeout):
            # Queued inside: a writer already shut down is a 503, as for ``record``.
            pending = _Pending([(event, audit_rows(event)) for event in events], waiter=waiter)
            if self._on_loop:
                # One timer for the loop's batch, not one per request: ``asyncio.wait_for`` was a
                # quarter of this method's samples, most of it arming a timer.
                self._join_turn(loop, pending, timeout)
                await waiter
                return
            self._enqueue(pending)
            timer = loop.call_later(timeout, _expire, [pending])
            try:
                await waiter
            finally:
                timer.cancel()

    def _join_turn(self, loop: asyncio.AbstractEventLoop, pending: _Pending, timeout: float) -> None:
        if self._closed:
            raise WriterClosed("the audit writer is shut down")
        turn = self._turn.get(loop)
        if turn is None:
            batch: list[_Pending] = []
            # Its events join within a few turns of each other: their deadlines are this one.
            turn = self._turn[loop] = _Turn(batch, loop.call_later(timeout, _expire, batch))
            loop.call_soon(self._gather, loop, 1, 0)  # after everything else ready in this turn
        turn.batch.append(pending)

    def _gather(self, loop: asyncio.AbstractEventLoop, turns: int, seen: int) -> None:
        """At the end of a turn: wait one more while the batch grew in the last one (and is not yet
        full), else commit it."""
        size = len(self._turn[loop].batch)
        if size > seen and size < self._max_batch and turns < GATHER_TURNS:
            loop.call_soon(self._gather, loop, turns + 1, size)
            return
        self._commit_turn(loop)

    def _commit_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop's batch, committed here on the loop, or handed to the thread if a writer is in."""
        turn = self._turn.pop(loop)
        batch = turn.batch
        failure: BaseException | None = None
        committed = False
        try:
            with self._db.write_if_free() as conn:
                if conn is not None:
                    _write(conn, batch)
                    committed = True
        except Exception as exc:  # every waiter must hear of it
            failure = exc
        if failure is None and not committed:
            try:
                for pending in batch:
                    self._enqueue(pending)
            except WriterClosed as exc:
                _settle_on_loop([p.waiter for p in batch if p.waiter is not None], exc)
            return  # the timer runs on until the thread has committed it (or expires it)
        turn.deadline.cancel()
        _settle_on_loop([p.waiter for p in batch if p.waiter is not None], failure)

    def _checkpoint_soon(self) -> None:
        """Due after the loop's commits (``Database.on_checkpoint_due``): the thread runs it."""
        with suppress(WriterClosed):
            self._enqueue(_CHECKPOINT)

    def submit(self, events: Sequence[dict[str, Any]]) -> Future[None]:
        """Queue ``events``; the future resolves when their batch commits (or fails)."""
        # Index rows are worked out here, in the request's thread, so the writer only runs SQL.
        done: Future[None] = Future()
        self._enqueue(_Pending([(event, audit_rows(event)) for event in events], done=done))
        return done

    def _enqueue(self, pending: _Pending | _Checkpoint) -> None:
        with self._lock:
            if self._closed:
                raise WriterClosed("the audit writer is shut down")
            if self._thread is None:
                # Started on first use, in the process that serves (never inherited by a fork).
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()
            self._queue.put(pending)

    def queued(self) -> int:
        """Requests waiting for a batch to start (not those in the batch being committed)."""
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Stop taking events, commit everything already queued, and stop the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[_Pending] = []
            checkpoint = stopping = False
            item: _Pending | _Checkpoint | None = first
            while True:
                if isinstance(item, _Checkpoint):
                    checkpoint = True
                elif item is not None:
                    batch.append(item)
                if len(batch) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
            if batch:
                self._commit(batch)
            if checkpoint:
                self._checkpoint()
            if stopping:
                return

    def _checkpoint(self) -> None:
        try:
            self._db.checkpoint()
        except Exception as exc:  # the next one will try again; nothing waits on it
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    def _commit(self, batch: list[_Pending]) -> None:
        failure: BaseException | None = None
        try:
            with self._db.transaction(write=True) as conn:
                _write(conn, batch)
        except BaseException as exc:  # every waiter must hear of it, whatever it was
            failure = exc
        _settle(batch, failure)
        if failure is not None and not isinstance(failure, Exception):
            raise failure


def _write(conn: Connection, batch: list[_Pending]) -> None:
    """A batch's events, with the index rows worked out in their requests, in one set of inserts."""
    ResourceStore(conn).create_many(
        "AuditEvent", [item for pending in batch for item in pending.events], now=datetime.now(UTC)
    )


def _settle(batch: list[_Pending], failure: BaseException | None) -> None:
    """Resolve every waiter of a batch: threads' futures here, each loop's futures in one callback."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for pending in batch:
        if pending.done is not None:
            if failure is None:
                pending.done.set_result(None)
            else:
                pending.done.set_exception(failure)
        if pending.waiter is not None:
            by_loop.setdefault(pending.waiter.get_loop(), []).append(pending.waiter)
    for loop, waiters in by_loop.items():
        with suppress(RuntimeError):  # that loop has closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_on_loop, waiters, failure)


def _settle_on_loop(waiters: list[asyncio.Future[None]], failure: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():  # timed out, or its request was cancelled
            continue
        if failure is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(failure)


def _expire(batch: list[_Pending]) -> None:
    """A deadline passed: whoever in ``batch`` is still waiting gets ``TimeoutError`` (a 503)."""
    _settle_on_loop([p.waiter for p in batch if p.waiter is not None], TimeoutError())


class WriterClosed(RuntimeError):
    pass


@contextmanager
def _committed_or_unavailable(timeout: float) -> Iterator[None]:
    """A batch that failed or did not commit in time becomes 503 (``ServiceUnavailable``)."""
    try:
        yield
    except TimeoutError:  # concurrent.futures.TimeoutError is TimeoutError since Python 3.11
        log.warning("audit batch not committed within %.0f s", timeout)
        raise _unavailable() from None
    except Exception as exc:
        # Type only: a database error's message can carry SQL or connection details.
        log.warning("audit batch not committed: %s", type(exc).__name__)
        raise _unavailable() from None


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The access could not be recorded in the audit trail, so it was not answered; retry the request",
        headers={"Retry-After": RETRY_AFTER},
    )
