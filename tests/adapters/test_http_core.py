"""The shared outbound HTTP core against a real loopback receiver: status mapping, deadlines, the
response cap, the SSRF guard at connect time and the address pinning that closes DNS rebinding."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from adapters import _http
from adapters._http import HttpReply, client, post, receipt_or_raise
from adapters.base import MisconfiguredError, PermanentError, RetryableError, Transport
from auth.netguard import IPAddress
from tests.support.receiver import Receiver, Reply

LOOPBACK = Transport(allow_private=True, deadline_seconds=2.0, max_response_bytes=1000)
PUBLIC_ONLY = Transport(allow_private=False, deadline_seconds=2.0, max_response_bytes=1000)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver.start() as receiver:
        yield receiver


def send(url: str, transport: Transport = LOOPBACK, http: httpx.AsyncClient | None = None) -> HttpReply:
    async def go() -> HttpReply:
        async with http or client(transport) as session:
            return await post(
                session,
                url,
                content=b'{"a":1}',
                headers={"content-type": "application/json"},
                transport=transport,
            )

    return asyncio.run(go())


def deliver(url: str, transport: Transport = LOOPBACK) -> None:
    receipt_or_raise(send(url, transport))


def test_2xx_is_a_receipt_and_the_request_is_as_sent(rx: Receiver) -> None:
    rx.script(Reply(202, body=b"accepted"))
    reply = send(rx.url("/hook?x=1"))
    assert receipt_or_raise(reply).status_code == 202
    assert reply.body == b"accepted"
    [request] = rx.requests
    assert (request.method, request.path, request.body) == ("POST", "/hook?x=1", b'{"a":1}')
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "wraparound-delivery"
    assert request.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "120", 120.0),
        (500, "0", 0.0),
        (429, None, None),
        (408, "soon", None),  # garbage is ignored, not fatal
        (503, "99999999", 86400.0),  # capped at a day
    ],
)
def test_retryable_statuses_carry_retry_after(
    rx: Receiver, status: int, retry_after: str | None, expected: float | None
) -> None:
    rx.script(Reply(status, {"Retry-After": retry_after} if retry_after else {}))
    with pytest.raises(RetryableError) as caught:
        deliver(rx.url())
    assert caught.value.status_code == status
    assert caught.value.retry_after == expected


def test_retry_after_as_an_http_date(rx: Receiver) -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    rx.script(Reply(503, {"Retry-After": format_datetime(when, usegmt=True)}))
    with pytest.raises(RetryableError) as caught:
        deliver(rx.url())
    assert caught.value.retry_after is not None
    assert 85 <= caught.value.retry_after <= 90


def test_retry_after_in_the_past_means_now(rx: Receiver) -> None:
    rx.script(Reply(503, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with pytest.raises(RetryableError) as caught:
        deliver(rx.url())
    assert caught.value.retry_after == 0.0


@pytest.mark.parametrize("status", [400, 410])
def test_other_4xx_are_permanent_and_never_echo_the_body(rx: Receiver, status: int) -> None:
    rx.script(Reply(status, body=b"patient Jane Doe not found"))
    with pytest.raises(PermanentError) as caught:
        deliver(rx.url())
    assert caught.value.status_code == status
    assert "Jane" not in caught.value.message


@pytest.mark.parametrize("to_self", [False, True])
def test_redirects_are_not_followed(rx: Receiver, to_self: bool) -> None:
    rx.script(Reply.redirect(rx.url("/elsewhere")) if to_self else Reply.redirect())
    with pytest.raises(MisconfiguredError, match="redirect not followed") as caught:
        deliver(rx.url())
    assert caught.value.status_code == 302
    time.sleep(0.1)  # a follow to ourselves would have landed by now
    assert [r.path for r in rx.requests] == ["/hook"]


def test_a_slow_answer_is_cut_at_the_deadline(rx: Receiver) -> None:
    rx.script(Reply.delayed(5.0))
    transport = Transport(allow_private=True, deadline_seconds=0.8, max_response_bytes=1000)
    started = time.monotonic()
    with pytest.raises(RetryableError) as caught:
        deliver(rx.url(), transport)
    assert time.monotonic() - started < 0.8 + 0.5
    assert caught.value.status_code is None


def test_a_trickling_body_is_cut_at_the_total_deadline(rx: Receiver) -> None:
    # One byte a second never trips a per-phase read timeout (1.5 s here); only a total one stops it.
    rx.script(Reply.trickle(b"x" * 30, interval=1.0))
    transport = Transport(allow_private=True, deadline_seconds=1.5, max_response_bytes=1000)
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"within 1\.5s"):
        deliver(rx.url(), transport)
    assert 1.4 <= time.monotonic() - started < 1.5 + 0.5


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
def test_an_over_cap_body_is_retryable_with_its_status(rx: Receiver, chunked: bool) -> None:
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    rx.script(Reply(200, headers, body=b"y" * 5000))
    with pytest.raises(RetryableError, match="response too large") as caught:
        send(rx.url())
    assert caught.value.status_code == 200


def test_a_body_at_the_cap_is_read_whole(rx: Receiver) -> None:
    rx.script(Reply(200, {"Transfer-Encoding": "chunked"}, body=b"z" * 1000))
    assert send(rx.url()).body == b"z" * 1000


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_addresses_are_refused_before_connecting(rx: Receiver, host: str) -> None:
    with pytest.raises(MisconfiguredError, match="resolves to a non-public address"):
        send(rx.url(host=host, scheme="https"), PUBLIC_ONLY)
    assert rx.connections == 0
    assert rx.requests == []


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("ftp://127.0.0.1/hook", LOOPBACK),
        ("file:///etc/passwd", LOOPBACK),
        ("http://partner.example.org/hook", PUBLIC_ONLY),  # plain http only when private is allowed
        ("https://user:pw@partner.example.org/hook", PUBLIC_ONLY),
        ("https:///hook", PUBLIC_ONLY),
    ],
)
def test_bad_urls_are_refused(url: str, transport: Transport) -> None:
    with pytest.raises(MisconfiguredError):
        send(url, transport)


def test_nothing_listening_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetryableError, match="connection failed"):
        send(f"http://127.0.0.1:{port}/hook")


def test_the_hostname_stays_in_host_while_the_vetted_address_is_dialled(rx: Receiver) -> None:
    async def go() -> str:
        async with client(LOOPBACK) as http:
            response = await http.post(rx.url(host="localhost"), content=b"{}")
            return str(response.extensions["network_stream"].get_extra_info("server_addr")[0])

    # The receiver listens on IPv4 loopback only; whatever "localhost" resolves to, we dialled that.
    assert asyncio.run(go()) == "127.0.0.1"
    assert rx.requests[0].headers["host"] == f"localhost:{rx.port}"


class Rebinding:
    """A DNS server that answers once with the receiver's address, then with something else."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.answers = [first, later]
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        answer = self.answers[min(len(self.calls) - 1, 1)]
        return [ipaddress.ip_address(a) for a in answer]


def pinned_client(transport: Transport, resolver: Rebinding) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=_http._PinnedTransport(transport, resolver=resolver))


def test_the_connection_goes_to_the_one_answer_that_was_vetted(rx: Receiver) -> None:
    # "rebind.test" exists nowhere but in this resolver: reaching the receiver at all proves the
    # connection was made to the vetted address, not to a second lookup of the name.
    dns = Rebinding(["127.0.0.1"], ["127.0.0.2"])
    url = f"http://rebind.test:{rx.port}/hook"
    receipt_or_raise(send(url, http=pinned_client(LOOPBACK, dns)))
    assert dns.calls == ["rebind.test"]
    assert rx.requests[0].headers["host"] == f"rebind.test:{rx.port}"


def test_one_private_address_among_public_ones_is_refused(rx: Receiver) -> None:
    dns = Rebinding(["93.184.215.14", "127.0.0.1"], ["127.0.0.1"])
    with pytest.raises(MisconfiguredError, match=r"non-public address \(127\.0\.0\.1\)"):
        send(f"https://rebind.test:{rx.port}/hook", PUBLIC_ONLY, http=pinned_client(PUBLIC_ONLY, dns))
    assert dns.calls == ["rebind.test"]
    assert rx.connections == 0


def test_an_unresolvable_host_is_retryable() -> None:
    class NoDns(Rebinding):
        def __call__(self, host: str, port: int) -> list[IPAddress]:
            raise ValueError("cannot resolve host")

    with pytest.raises(RetryableError, match="connection failed"):
        send("http://gone.test/hook", http=pinned_client(LOOPBACK, NoDns([], [])))
