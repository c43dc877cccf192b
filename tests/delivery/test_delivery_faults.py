"""Nothing the hub accepted is ever lost (issue 8, "Outbox and worker" and "Tests").

Real ``wraparound worker`` processes against the test database (SQLite, or PostgreSQL with
WRAPAROUND_TEST_DATABASE_URL), real receivers on loopback, and real faults: ``kill -9`` after the claim
and after the partner's 2xx, SIGTERM mid-request, several workers racing for one queue, PostgreSQL
sessions terminated under a running worker, and a slow partner beside a quick one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from service.settings import Settings
from service.storage.outbox import OutboxRow
from tests.delivery._delivery_world import add_endpoint, drain, refer_with_consent, rotate_secret, rows
from tests.delivery._faults import (
    DEADLINE_SECONDS,
    LEASE_SECONDS,
    STARTUP_SECONDS,
    PartnerFhir,
    Workers,
    attempts,
    is_postgres,
    outbox,
    pending,
    queue_notices,
    settle_blocked,
    someone_waits_on_a_lock,
    terminate_backends,
    wait_until,
)
from tests.referrals._workflow_hub import Hub, ok, permit
from tests.support import logscan
from tests.support.clients import FhirClients
from tests.support.live import LiveServer
from tests.support.receiver import Receiver, RecordedRequest, Reply

POSTGRES_ONLY = (
    "PostgreSQL only: this suite is running on SQLite; set WRAPAROUND_TEST_DATABASE_URL to a PostgreSQL "
    "URL to run it (CI runs both)"
)


@pytest.fixture
def hub(fhir: FhirClients) -> Hub:
    return Hub.build(fhir)


@pytest.fixture
def pg_hub(hub: Hub) -> Hub:
    if not is_postgres(hub.fhir.db):
        pytest.skip(POSTGRES_ONLY)
    return hub


@pytest.fixture
def workers(fhir: FhirClients, server: LiveServer, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(fhir.db, server.base_url, tmp_path)
    yield started
    assert not started.close(), "a worker process logged a secret or an NHS number"


def webhook_partner(hub: Hub, rx: Receiver, organization_id: str | None = None) -> tuple[str, str]:
    """A webhook Endpoint at ``rx`` for the partner (or another organisation): (its id, its secret)."""
    endpoint = add_endpoint(hub.admin, organization_id or hub.partner.organization_id, "webhook", rx.url())
    secret = rotate_secret(hub.admin, endpoint)
    logscan.SECRETS.append(secret)  # the session's log scan looks for it too
    return endpoint, secret


def referral_row(hub: Hub, task_id: str) -> OutboxRow:
    [row] = [r for r in rows(hub.fhir.db, task_id) if r.organization_id == hub.partner.organization_id]
    return row


def task_ids(hub: Hub, count: int, target: str | None = None) -> list[str]:
    """``count`` referrals of one patient under one permit (naming both partners); their Task ids."""
    patient = hub.patient()
    consent = hub.consent(
        patient, permit(hub.partner.org_ref, hub.other_partner.org_ref), dateTime="2026-11-30T10:00:00Z"
    )
    made = [
        hub.referred(patient, target or hub.opt_in, supportingInfo=[{"reference": consent}])
        for _ in range(count)
    ]
    return [str(task["id"]) for _, task in made]


# -- 1. kill -9 after the claim, mid-request --------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_request_is_redelivered_after_the_lease_with_the_same_webhook_id(
    hub: Hub, workers: Workers
) -> None:
    held_by: list[str | None] = []

    def kill_the_sender(request: RecordedRequest) -> Reply:
        if not held_by:  # the first request: the claim is committed, the answer not yet sent
            held_by.append(referral_row(hub, referral.task["id"]).lease_owner)
            workers.started[0].kill9()
        return Reply(200)

    with Receiver.start(handler=kill_the_sender) as rx:
        _, secret = webhook_partner(hub, rx)
        referral = refer_with_consent(hub)
        first = workers.start()
        rx.wait_for(1, timeout=STARTUP_SECONDS)
        wait_until(lambda: not first.alive(), 10, "the first worker to die")
        second = workers.start()
        wait_until(
            lambda: referral_row(hub, referral.task["id"]).state == "delivered",
            LEASE_SECONDS + STARTUP_SECONDS,
            "redelivery",
        )
        code, _ = second.terminate(timeout=DEADLINE_SECONDS + 10)
        received = rx.requests
    assert not rx.errors, rx.errors
    assert first.proc.returncode == -9
    assert held_by[0] is not None
    assert f":{first.pid}:" in held_by[0]
    row = referral_row(hub, referral.task["id"])
    # Exactly two requests: the one cut off and the redelivery, signed, with one idempotency id.
    assert len(received) == 2
    for request in received:
        assert request.headers["webhook-id"] == row.message_id
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "referral.created"
    # The second worker waited for the crashed claim's lease to run out; it did not steal a live one.
    assert received[1].time - received[0].time >= LEASE_SECONDS - 1.0
    assert (row.state, row.attempts, row.fence, row.lease_until) == ("delivered", 1, 2, None)
    [attempt] = [a for a in attempts(hub.fhir.db) if a["outbox_id"] == row.id]
    assert attempt["outcome"] == "delivered"
    assert f":{second.pid}:" in attempt["worker"]
    assert code == 0


# -- 2. kill -9 after the partner's 2xx, before the ack --------------------------------------------


@pytest.mark.slow
def test_kill_9_after_the_2xx_before_the_ack_redelivers_without_a_partner_side_duplicate(
    hub: Hub, workers: Workers
) -> None:
    db = hub.fhir.db
    lock = ExitStack()
    answering = threading.Event()
    with PartnerFhir.serving() as partner:
        add_endpoint(hub.admin, hub.partner.organization_id, "hl7-fhir-rest", partner.base_url)
        referral = refer_with_consent(hub)
        row = referral_row(hub, referral.task["id"])

        def block_the_ack(_request: RecordedRequest) -> None:
            if not answering.is_set():  # take what settle() needs, then let the partner answer 200
                lock.enter_context(settle_blocked(db, row.id))
                answering.set()

        partner.on_transaction = block_the_ack
        first = workers.start()
        try:
            assert answering.wait(STARTUP_SECONDS), "the worker never sent the referral"
            if is_postgres(db):
                # Deterministic: the worker's settle statement is queued behind our row lock.
                wait_until(lambda: someone_waits_on_a_lock(db), 30, "the worker's settle to block")
            else:
                # SQLite shows no lock waiters; the worker waits in its busy handler (30 s) by now.
                time.sleep(1.0)
            assert partner.count("Task") == 1  # the partner has it: the 2xx went out
            first.kill9()
        finally:
            lock.close()
        if is_postgres(db):  # its session, and the settle it had queued, end with the process
            wait_until(lambda: not workers.connected(first), 30, "the killed worker's session to end")
        # The acknowledgement never happened: the row is still claimed by the dead worker.
        unacked = referral_row(hub, referral.task["id"])
        assert (unacked.state, unacked.attempts, unacked.fence) == ("pending", 0, 1)
        assert unacked.lease_owner is not None
        assert f":{first.pid}:" in unacked.lease_owner
        assert [a for a in attempts(db) if a["outbox_id"] == row.id] == []

        second = workers.start()
        wait_until(
            lambda: referral_row(hub, referral.task["id"]).state == "delivered",
            LEASE_SECONDS + STARTUP_SECONDS,
            "redelivery",
        )
        code, _ = second.terminate(timeout=DEADLINE_SECONDS + 10)
        # Delivered twice; the conditional creates and updates made one copy of each resource.
        assert len(partner.transactions) == 2
        counts = {t: partner.count(t) for t in ("Patient", "Consent", "ServiceRequest", "Task")}
        assert counts == {"Patient": 1, "Consent": 1, "ServiceRequest": 1, "Task": 1}
        conditions = [[e["request"] for e in t["entry"]] for t in partner.transactions]
    assert conditions[0] == conditions[1]
    done = referral_row(hub, referral.task["id"])
    assert (done.state, done.attempts, done.fence) == ("delivered", 1, 2)
    [attempt] = [a for a in attempts(db) if a["outbox_id"] == row.id]
    assert attempt["outcome"] == "delivered"
    assert f":{second.pid}:" in attempt["worker"]
    assert code == 0


# -- 3. two and four workers over thousands of rows ---------------------------------------------------

STREAMS = (5, 20)  # Tasks x recipients: 100 ordered streams (a stream's rows go one at a time)
PER_STREAM = 20  # 2000 notices in all


def recipients(hub: Hub, endpoint_id: str, count: int) -> list[str]:
    """``count`` more organisations reached at the same webhook Endpoint; their ids."""
    made = []
    for n in range(count):
        body = {
            "resourceType": "Organization",
            "name": f"Recipient {n}",
            "endpoint": [{"reference": f"Endpoint/{endpoint_id}"}],
        }
        made.append(str(ok(hub.admin.post("/fhir/Organization", json=body), 201)["id"]))
    return made


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("count", [2, 4])
def test_concurrent_workers_never_claim_a_row_twice(
    pg_hub: Hub, workers: Workers, count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, db = pg_hub, pg_hub.fhir.db
    # Up to 64 connections arrive at once; http.server's default listen backlog (5) would reset some
    # before the request is read (an honest retry, but this test is about claims, not a small server).
    monkeypatch.setattr(ThreadingHTTPServer, "request_queue_size", 128)
    with Receiver.start() as rx:
        endpoint, _ = webhook_partner(hub, rx)
        tasks = task_ids(hub, STREAMS[0])
        orgs = [hub.partner.organization_id, *recipients(hub, endpoint, STREAMS[1] - 1)]
        # Healthy workers, a lease longer than the run: at-least-once must come out exactly once.
        racing = [
            workers.start(
                DELIVERY_LEASE_SECONDS=300,
                DELIVERY_DEADLINE_SECONDS=60,
                DELIVERY_CONCURRENCY=16,
                DELIVERY_PARTNER_CONCURRENCY=16,
            )
            for _ in range(count)
        ]
        wait_until(
            lambda: all(workers.connected(w) for w in racing), STARTUP_SECONDS, "every worker to connect"
        )
        queue_notices(db, orgs, tasks, PER_STREAM)
        wait_until(lambda: pending(db) == 0, 120, "the queue to empty", interval=0.2)
        codes = [w.terminate(timeout=30)[0] for w in racing]
        received = Counter(r.headers["webhook-id"] for r in rx.requests)
    assert codes == [0] * count
    sent = [r for r in outbox(db) if r.organization_id in orgs]
    assert len(sent) == STREAMS[0] * (1 + STREAMS[1] * PER_STREAM)  # the referrals and the notices
    assert Counter(r.state for r in sent) == {"delivered": len(sent)}
    tried = [a for a in attempts(db) if a["outbox_id"] in {r.id for r in sent}]
    assert Counter(a["outbox_id"] for a in tried) == dict.fromkeys((r.id for r in sent), 1)
    assert {r.fence for r in sent} == {1}  # every claim bumps the fence: each row was claimed once
    assert received == dict.fromkeys((r.message_id for r in sent), 1)
    # The race was real: every worker delivered part of the queue.
    assert all(any(f":{w.pid}:" in a["worker"] for a in tried) for w in racing)


# -- 4. PostgreSQL sessions terminated under a running worker --------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_recovers_from_terminated_database_sessions_without_a_restart(
    pg_hub: Hub, workers: Workers
) -> None:
    hub, db = pg_hub, pg_hub.fhir.db
    with Receiver.start(default=Reply.delayed(0.02)) as rx:
        webhook_partner(hub, rx)
        tasks = task_ids(hub, 5)
        worker = workers.start(DELIVERY_PARTNER_CONCURRENCY=8)
        wait_until(lambda: workers.connected(worker), STARTUP_SECONDS, "the worker to connect")
        queue_notices(db, [hub.partner.organization_id], tasks, 40)
        rx.wait_for(20, timeout=STARTUP_SECONDS)
        # Cut every session of this test database (never the server: other test workers share it),
        # again and again while deliveries are being claimed and settled.
        cut = 0
        for _ in range(12):
            cut += terminate_backends(db, worker.name)
            time.sleep(0.1)
        assert cut > 0, "no session of the worker was terminated"
        wait_until(
            lambda: pending(db) == 0,
            LEASE_SECONDS + STARTUP_SECONDS,
            "every delivery to be made",
            interval=0.2,
        )
        assert worker.alive(), "the worker died instead of reconnecting"
        code, _ = worker.terminate(timeout=30)
        received = Counter(r.headers["webhook-id"] for r in rx.requests)
    sent = [r for r in outbox(db) if r.organization_id == hub.partner.organization_id]
    assert len(sent) == 5 * 41
    assert Counter(r.state for r in sent) == {"delivered": len(sent)}
    assert all(received[r.message_id] >= 1 for r in sent)  # at least once, none lost
    assert code == 0


# -- 5. graceful shutdown ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("delay", "state"),
    [
        pytest.param(1.0, "delivered", id="answer-within-the-deadline-finishes"),
        pytest.param(5.0, "pending", id="answer-past-the-deadline-is-given-back"),
    ],
)
def test_sigterm_finishes_or_releases_the_delivery_in_flight_and_exits_0(
    hub: Hub, workers: Workers, delay: float, state: str
) -> None:
    with Receiver.start(default=Reply.delayed(delay)) as rx:
        webhook_partner(hub, rx)
        referral = refer_with_consent(hub)
        worker = workers.start()
        rx.wait_for(1, timeout=STARTUP_SECONDS)  # in flight: the partner has the request and has not answered
        code, took = worker.terminate(timeout=DEADLINE_SECONDS + 10)
        received = rx.requests
    assert code == 0
    # The drain waits the attempt deadline + 2 s at most; a worker that never drained would be killed at
    # the terminate timeout instead. The generous slack is for a loaded CI machine (7 s seen at load 19).
    assert took < DEADLINE_SECONDS + 2 + 8
    assert len(received) == 1  # nothing new was started after the signal
    row = referral_row(hub, referral.task["id"])
    assert (row.state, row.lease_until) == (state, None)
    [attempt] = [a for a in attempts(hub.fhir.db) if a["outbox_id"] == row.id]
    assert attempt["outcome"] == ("delivered" if state == "delivered" else "retryable")


# -- 6. a slow partner does not delay another -------------------------------------------------------

# Partner A answers every delivery after SLOW_ANSWER (slow, but inside the attempt deadline, so each
# attempt succeeds); partner B answers at once. One worker, 4 slots, at most 2 per partner.
SLOW_ANSWER = 1.2
BULKHEAD = {"delivery_concurrency": 4, "delivery_partner_concurrency": 2, "delivery_deadline_seconds": 2.0}


def _bulkhead_world(hub: Hub, slow: Receiver, quick: Receiver) -> None:
    webhook_partner(hub, slow)
    webhook_partner(hub, quick, hub.other_partner.organization_id)
    # A's referrals first: they are due first and would take every slot without the bulkhead.
    task_ids(hub, 10)
    task_ids(hub, 10, target=hub.other_partner.org_ref)


def _assert_b_was_not_held_up(hub: Hub, slow: Receiver, quick: Receiver) -> None:
    a, b = slow.wait_for(10, timeout=1), quick.wait_for(10, timeout=1)
    assert len(slow.requests) == len(quick.requests) == 10  # one attempt each: nobody timed out
    # B's ten deliveries all went out while A's first two waves (2 slots, SLOW_ANSWER each) were still
    # in flight; without the bulkhead they wait behind A's rows (due first) and 8 or more of A's have
    # gone by then. Counting A's requests, not seconds, keeps this true on a loaded machine.
    last_b = max(r.time for r in b)
    assert sum(r.time < last_b for r in a) <= 4
    made = [r for r in outbox(hub.fhir.db) if r.kind == "referral.created"]
    a_done = sorted(
        r.finished_at for r in made if r.organization_id == hub.partner.organization_id and r.finished_at
    )
    b_done = [
        r.finished_at
        for r in made
        if r.organization_id == hub.other_partner.organization_id and r.finished_at
    ]
    assert Counter(r.state for r in made) == {"delivered": 20}
    assert len(a_done) == len(b_done) == 10
    assert max(b_done) < a_done[2]  # B was done before A's second wave was


@pytest.mark.slow
def test_a_slow_partner_does_not_delay_another_in_a_running_worker(hub: Hub, workers: Workers) -> None:
    with Receiver.start(default=Reply.delayed(SLOW_ANSWER)) as slow, Receiver.start() as quick:
        _bulkhead_world(hub, slow, quick)
        worker = workers.start(DELIVERY_LEASE_SECONDS=8, **{k.upper(): v for k, v in BULKHEAD.items()})
        wait_until(
            lambda: pending(hub.fhir.db) == 0, STARTUP_SECONDS + 30, "every delivery to be made", interval=0.1
        )
        code, _ = worker.terminate(timeout=30)
        _assert_b_was_not_held_up(hub, slow, quick)
    assert code == 0


@pytest.mark.slow
def test_a_slow_partner_does_not_delay_another_in_a_drain(hub: Hub, settings: Settings) -> None:
    # `wraparound worker --once` (and the tests' drain) runs Worker.run_until_idle, not run().
    with Receiver.start(default=Reply.delayed(SLOW_ANSWER)) as slow, Receiver.start() as quick:
        _bulkhead_world(hub, slow, quick)
        drain(hub.fhir.db, settings, **BULKHEAD)
        _assert_b_was_not_held_up(hub, slow, quick)
