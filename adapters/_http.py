"""The outbound HTTP core every HTTP adapter shares: a pinned, SSRF-guarded transport, one POST with a
total deadline and a response cap, and the mapping from an HTTP status to a receipt or a typed error.

Pinning closes the gap documented in ``auth/netguard.py``: the host is resolved once, every address is
vetted, and the connection is made to a vetted address itself, so a DNS server that answers differently
the second time (DNS rebinding) never gets a say. TLS SNI and the ``Host`` header still carry the
hostname, because httpcore takes both from the request URL, not from the address we connect to.

Response bodies are the bytes on the wire: we ask for ``Accept-Encoding: identity`` and never decode, so
the cap bounds memory (a gzip bomb would otherwise expand past it inside httpx's decoder).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import httpcore
import httpx

from adapters.base import MisconfiguredError, PermanentError, Receipt, RetryableError, Transport
from auth.netguard import IPAddress, _is_forbidden, resolve

# A receiver asking us to wait longer than this is treated as asking for a day (the worker's backoff
# and attempt budget still apply).
MAX_RETRY_AFTER_SECONDS = 24 * 60 * 60

Resolver = Callable[[str, int], list[IPAddress]]


@dataclass(frozen=True)
class HttpReply:
    status_code: int
    headers: httpx.Headers
    body: bytes  # at most transport.max_response_bytes, as sent (no content decoding)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, vets every address, then connects to the vetted address itself."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = resolve) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            # getaddrinfo blocks; the caller's deadline still bounds the wait.
            addresses = await asyncio.to_thread(self._resolver, host, port)
        except ValueError:
            # Could be a DNS outage as much as a typo: let the worker retry.
            raise httpcore.ConnectError(f"cannot resolve host {host!r}") from None
        if not self._allow_private:
            for address in addresses:
                # Every address, not just the first: otherwise a mixed answer could still reach
                # a private one on fallback.
                if _is_forbidden(address):
                    raise MisconfiguredError(f"host {host!r} resolves to a non-public address ({address})")
        last: Exception | None = None
        for address in dict.fromkeys(addresses):  # unique, in resolver order
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # resolve() never returns an empty list
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise MisconfiguredError("unix sockets are not a delivery address")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@cache
def _ssl_context() -> ssl.SSLContext:
    # Building one loads the certifi bundle (~40 ms): once per process, shared by every client. An
    # SSLContext is safe to share; it holds configuration, not connection state.
    return httpx.create_ssl_context(trust_env=False)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self, transport: Transport, *, resolver: Resolver = resolve, max_connections: int = 10
    ) -> None:
        # trust_env=False: no proxy from the environment (a proxy would connect on our behalf, unvetted).
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        # httpx builds its pool without a way to pass a network backend; replace it with one that has
        # ours (same defaults as httpx: TLS verified against certifi, HTTP/1.1).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_PinnedBackend(allow_private=transport.allow_private, resolver=resolver),
        )


def pinned_transport(transport: Transport, *, max_connections: int = 10) -> httpx.AsyncBaseTransport:
    return _PinnedTransport(transport, max_connections=max_connections)


@asynccontextmanager
async def session(transport: Transport) -> AsyncIterator[httpx.AsyncClient]:
    """The client for one attempt: the worker's pooled one when it lends one (kept open: connections are
    reused across deliveries, each new one vetted), else a client of its own, closed afterwards."""
    if transport.http is not None:
        yield transport.http
        return
    async with client(transport) as http:
        yield http


def client(transport: Transport, *, max_connections: int = 10, **kwargs: Any) -> httpx.AsyncClient:
    """An AsyncClient for delivery; ``kwargs`` may add options but never a transport or redirects."""
    if "transport" in kwargs or "follow_redirects" in kwargs:
        raise TypeError("the delivery client always uses the pinned transport and never follows redirects")
    headers = httpx.Headers({"user-agent": transport.user_agent})
    headers.update(kwargs.pop("headers", None) or {})
    options: dict[str, Any] = {
        # Per phase; post() adds the total deadline on top.
        "timeout": httpx.Timeout(transport.deadline_seconds),
        # No .netrc credentials, no environment proxies.
        "trust_env": False,
        **kwargs,
    }
    return httpx.AsyncClient(
        transport=pinned_transport(transport, max_connections=max_connections),
        follow_redirects=False,
        headers=headers,
        **options,
    )


def _check_url(url: str, *, allow_private: bool) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise MisconfiguredError("malformed delivery URL") from None
    if parsed.scheme != "https" and not (allow_private and parsed.scheme == "http"):
        raise MisconfiguredError(f"URL scheme {parsed.scheme!r} not allowed; use https")
    if not parsed.host:
        raise MisconfiguredError("delivery URL has no host")
    if parsed.userinfo:
        raise MisconfiguredError("delivery URL must not carry credentials")


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise RetryableError("response too large", status_code=response.status_code)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > cap:
            raise RetryableError("response too large", status_code=response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


async def post(
    http: httpx.AsyncClient, url: str, *, content: bytes, headers: Mapping[str, str], transport: Transport
) -> HttpReply:
    """One POST attempt, connect to last byte within ``transport.deadline_seconds``.

    A body over ``transport.max_response_bytes`` is a RetryableError("response too large") carrying the
    status: we could not read what the receiver said, delivery is at least once with a stable
    idempotency key (so a resend is safe), and the attempt budget ends it in a dead letter if the
    receiver keeps doing it. A 5xx error page from a proxy is the usual culprit, and that is transient.
    """
    _check_url(url, allow_private=transport.allow_private)
    request_headers = httpx.Headers(headers)
    request_headers.setdefault("accept-encoding", "identity")
    try:
        # httpx timeouts are per phase (a body trickling one byte a second never trips a read
        # timeout); the total deadline is what protects the worker.
        async with asyncio.timeout(transport.deadline_seconds):
            async with http.stream(
                "POST", url, content=content, headers=request_headers, follow_redirects=False
            ) as response:
                body = await _read_capped(response, transport.max_response_bytes)
                return HttpReply(response.status_code, response.headers, body)
    except TimeoutError:
        raise RetryableError(f"no complete response within {transport.deadline_seconds:g}s") from None
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timed out ({type(exc).__name__})") from None
    except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
        # Our request could not be formed (a bad header value, say): retrying will not help.
        raise MisconfiguredError(f"request refused before sending ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"connection failed ({type(exc).__name__})") from None


def _retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    # https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3: delay-seconds or an HTTP-date.
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), float(MAX_RETRY_AFTER_SECONDS))


def receipt_or_raise(reply: HttpReply) -> Receipt:
    """Map a status to the worker's decision. Messages carry the status only, never the body."""
    status = reply.status_code
    if 200 <= status < 300:
        return Receipt(status_code=status)
    if status in (408, 429) or 500 <= status < 600:
        raise RetryableError(
            f"receiver answered {status}",
            status_code=status,
            retry_after=_retry_after(reply.headers.get("retry-after")),
        )
    if 300 <= status < 400:
        # Following would let a receiver point us anywhere, past the address check.
        raise MisconfiguredError(f"receiver answered {status}: redirect not followed", status_code=status)
    if 400 <= status < 500:
        raise PermanentError(f"receiver answered {status}", status_code=status)
    raise PermanentError(f"receiver answered unexpected status {status}", status_code=status)


__all__ = ["HttpReply", "client", "pinned_transport", "post", "receipt_or_raise"]
