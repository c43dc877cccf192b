from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from auth.jwks_fetcher import JwksFetcher, JwksFetchError, cache_lifetime

URL = "https://keys.example.org/jwks.json"
JWKS = {"keys": [{"kty": "EC", "kid": "a"}]}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_fetcher(
    handler: Callable[[httpx.Request], httpx.Response], clock: Clock, *, allow_private: bool = True
) -> tuple[JwksFetcher, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.Client(transport=httpx.MockTransport(recording))
    return JwksFetcher(client=client, clock=clock, allow_private=allow_private), seen


def ok(headers: dict[str, str] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(200, json=JWKS, headers=headers or {})


def test_fetches_and_caches_for_default_lifetime() -> None:
    clock = Clock()
    fetcher, seen = make_fetcher(ok(), clock)
    assert fetcher.get(URL) == JWKS
    clock.now += 299
    assert fetcher.get(URL) == JWKS
    assert len(seen) == 1
    clock.now += 2
    fetcher.get(URL)
    assert len(seen) == 2


def test_honours_max_age() -> None:
    clock = Clock()
    fetcher, seen = make_fetcher(ok({"Cache-Control": "public, max-age=30"}), clock)
    fetcher.get(URL)
    clock.now += 29
    fetcher.get(URL)
    assert len(seen) == 1
    clock.now += 2
    fetcher.get(URL)
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, 300), ("max-age=60", 60), ("max-age=9999999", 86400), ("no-store", 0), ("private", 300)],
)
def test_cache_lifetime(header: str | None, seconds: int) -> None:
    assert cache_lifetime(header) == seconds


def test_force_refresh_refetches_but_is_rate_limited() -> None:
    clock = Clock()
    fetcher, seen = make_fetcher(ok(), clock)
    fetcher.get(URL)
    fetcher.get(URL, force_refresh=True)
    assert len(seen) == 1  # within the minimum refresh interval: served from cache
    clock.now += 11
    fetcher.get(URL, force_refresh=True)
    assert len(seen) == 2


def test_size_cap() -> None:
    big = {"keys": [{"kid": "x" * 70_000}]}
    fetcher, _ = make_fetcher(lambda r: httpx.Response(200, json=big), Clock())
    with pytest.raises(JwksFetchError, match="larger than"):
        fetcher.get(URL)


def test_total_deadline_stops_slow_drip() -> None:
    clock = Clock()

    def drip() -> Iterator[bytes]:
        for _ in range(100):
            clock.now += 1  # each chunk takes a second
            yield b" "

    fetcher, _ = make_fetcher(lambda r: httpx.Response(200, content=drip()), clock)
    with pytest.raises(JwksFetchError, match="deadline"):
        fetcher.get(URL)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(404),
        httpx.Response(302, headers={"Location": "http://169.254.169.254/"}),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, content=json.dumps({"no": "keys"}).encode()),
    ],
)
def test_bad_responses_raise(response: httpx.Response) -> None:
    fetcher, seen = make_fetcher(lambda r: response, Clock())
    with pytest.raises(JwksFetchError):
        fetcher.get(URL)
    assert len(seen) == 1  # the redirect was not followed


def test_transport_error_raises_fetch_error() -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fetcher, _ = make_fetcher(boom, Clock())
    with pytest.raises(JwksFetchError, match="ConnectError"):
        fetcher.get(URL)


def test_ssrf_guard_runs_before_any_request() -> None:
    fetcher, seen = make_fetcher(ok(), Clock(), allow_private=False)
    with pytest.raises(JwksFetchError, match="refused"):
        fetcher.get("https://127.0.0.1/jwks.json")
    with pytest.raises(JwksFetchError, match="refused"):
        fetcher.get("http://93.184.216.34/jwks.json")
    assert seen == []
