"""The outbox's claim protocol on the real database: leases, fencing, per-Task order, bulkheads, backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from service.delivery.backoff import delay_seconds
from service.storage import outbox as outbox_sql
from service.storage import referrals as referral_sql
from service.storage.database import Database


def _queue(db: Database, organization: str, focus: str, kind: str = "task.updated") -> int:
    with db.transaction() as conn:
        return referral_sql.add_outbox(
            conn, kind=kind, organization_id=organization, focus=focus, payload={}, now=datetime.now(UTC)
        )


def _claim(
    db: Database, worker: str, *, now: datetime | None = None, limit: int = 10, exclude: tuple[str, ...] = ()
) -> list[outbox_sql.OutboxRow]:
    moment = now or datetime.now(UTC)
    with db.transaction() as conn:
        return outbox_sql.claim(
            conn,
            worker=worker,
            now=moment,
            lease_until=moment + timedelta(seconds=30),
            limit=limit,
            exclude_recipients=exclude,
        )


def _finish(db: Database, row: outbox_sql.OutboxRow) -> bool:
    with db.transaction() as conn:
        return outbox_sql.finish(
            conn, row, state="delivered", now=datetime.now(UTC), attempts=1, endpoint_id=None, adapter="fake"
        )


def test_a_claimed_row_is_not_claimed_again_until_its_lease_expires(clean_database: Database) -> None:
    row_id = _queue(clean_database, "p1", "Task/a")
    [first] = _claim(clean_database, "w1")
    assert (first.id, first.lease_owner, first.fence) == (row_id, "w1", 1)
    assert _claim(clean_database, "w2") == []
    later = datetime.now(UTC) + timedelta(seconds=31)
    [second] = _claim(clean_database, "w2", now=later)
    assert (second.lease_owner, second.fence) == ("w2", 2)
    # The first worker's late acknowledgement names an old fence: it changes nothing.
    assert _finish(clean_database, first) is False
    assert _finish(clean_database, second) is True
    with clean_database.transaction(write=False) as conn:
        stored = outbox_sql.get(conn, row_id)
    assert stored is not None
    assert (stored.state, stored.lease_owner) == ("delivered", None)


def test_rows_about_one_task_go_in_order_while_other_tasks_proceed(clean_database: Database) -> None:
    first = _queue(clean_database, "p1", "Task/a", "referral.created")
    then = _queue(clean_database, "p1", "Task/a", "task.updated")
    other = _queue(clean_database, "p1", "Task/b", "referral.created")
    claimed = _claim(clean_database, "w1")
    assert sorted(r.id for r in claimed) == [first, other]  # Task/a's second notice waits for its first
    assert _claim(clean_database, "w2", now=datetime.now(UTC) + timedelta(seconds=31)) != []  # leases ran out
    [row_a] = [
        r
        for r in _claim(clean_database, "w3", now=datetime.now(UTC) + timedelta(seconds=62))
        if r.id == first
    ]
    assert _finish(clean_database, row_a) is True
    [next_row] = [
        r
        for r in _claim(clean_database, "w4", now=datetime.now(UTC) + timedelta(seconds=93))
        if r.focus == "Task/a"
    ]
    assert next_row.id == then


def test_a_recipient_at_its_bulkhead_limit_is_skipped(clean_database: Database) -> None:
    _queue(clean_database, "slow", "Task/a")
    fast = _queue(clean_database, "fast", "Task/b")
    assert [r.id for r in _claim(clean_database, "w1", exclude=("slow",))] == [fast]


def test_a_cancelled_row_cannot_be_acknowledged_by_the_worker_holding_it(clean_database: Database) -> None:
    _queue(clean_database, "p1", "Task/a", "referral.created")
    [held] = _claim(clean_database, "w1")
    with clean_database.transaction() as conn:
        cancelled = outbox_sql.cancel_pending(
            conn,
            organization_id="p1",
            focus="Task/a",
            kinds=("referral.created",),
            now=datetime.now(UTC),
            reason="consent withdrawn",
        )
    assert cancelled == 1
    assert _finish(clean_database, held) is False


def test_a_dead_letter_replays_with_a_fresh_budget(clean_database: Database) -> None:
    row_id = _queue(clean_database, "p1", "Task/a")
    [held] = _claim(clean_database, "w1")
    with clean_database.transaction() as conn:
        assert outbox_sql.finish(
            conn,
            held,
            state="dead",
            now=datetime.now(UTC),
            attempts=10,
            endpoint_id=None,
            adapter="fake",
            status_code=410,
            error="PermanentError: 410",
        )
        assert outbox_sql.replay(conn, row_id, now=datetime.now(UTC)) is True
        assert outbox_sql.replay(conn, row_id, now=datetime.now(UTC)) is False  # only dead letters replay
    [again] = _claim(clean_database, "w2")
    assert (again.id, again.attempts, again.message_id) == (row_id, 0, held.message_id)


@pytest.mark.parametrize("attempts", [1, 2, 5, 12])
def test_backoff_is_exponential_jittered_capped_and_honours_retry_after(attempts: int) -> None:
    rng = random.Random(7)
    nominal = min(600.0, 5.0 * 2 ** (attempts - 1))
    delays = [delay_seconds(attempts, base=5, cap=600, rng=rng) for _ in range(200)]
    assert all(nominal / 2 <= d <= nominal for d in delays)
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not a fixed step
    assert delay_seconds(attempts, base=5, cap=600, retry_after=900, rng=rng) == 600  # capped floor
    assert delay_seconds(1, base=5, cap=600, retry_after=120, rng=rng) == 120
