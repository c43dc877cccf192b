"""Fetch and cache a client's JWKS from its registered URL.

SMART Backend Services lets a client register a JWKS URL instead of a static key set
(https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys);
the server fetches it, honours ``Cache-Control: max-age``, and re-fetches once on an unknown ``kid``
so key rotation works. Every fetch goes through the SSRF guard first, with a total deadline and a
size cap so a hostile or broken URL cannot tie up a worker or its memory.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from auth.netguard import check_public_url

DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_BYTES = 64 * 1024
DEFAULT_MAX_AGE_SECONDS = 300
MAX_MAX_AGE_SECONDS = 24 * 60 * 60
# A forced refresh (unknown kid) is honoured at most this often per URL: otherwise anyone could
# make us hammer a client's JWKS host by sending assertions with random kids.
MIN_REFRESH_INTERVAL_SECONDS = 10.0

_MAX_AGE_RE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE_RE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


class JwksFetchError(ValueError):
    """The JWKS URL could not be fetched or did not hold a JWKS."""


class JwksSource(Protocol):
    """Anything that returns the JWKS published at a URL (the fetcher, or a fake in tests)."""

    def get(self, url: str, *, force_refresh: bool = False) -> dict[str, Any]: ...


@dataclass
class _Entry:
    jwks: dict[str, Any]
    fetched_at: float
    expires_at: float


def cache_lifetime(cache_control: str | None, default: int = DEFAULT_MAX_AGE_SECONDS) -> int:
    if not cache_control:
        return default
    if _NO_CACHE_RE.search(cache_control):
        return 0
    match = _MAX_AGE_RE.search(cache_control)
    if match is None:
        return default
    return min(int(match.group(1)), MAX_MAX_AGE_SECONDS)


class JwksFetcher:
    """Thread-safe JWKS cache. Uses a sync ``httpx.Client``; call it from a worker thread in async code."""

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        default_max_age: int = DEFAULT_MAX_AGE_SECONDS,
        allow_private: bool = False,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Redirects are not followed: a redirect target would bypass the SSRF guard.
        self._client = client or httpx.Client(follow_redirects=False)
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes
        self._default_max_age = min(default_max_age, MAX_MAX_AGE_SECONDS)
        self._allow_private = allow_private
        self._min_refresh = min_refresh_interval
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, url: str, *, force_refresh: bool = False) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            entry = self._cache.get(url)
        if entry is not None:
            fresh = now < entry.expires_at
            refresh_allowed = now - entry.fetched_at >= self._min_refresh
            if (fresh and not force_refresh) or not refresh_allowed:
                return entry.jwks
        jwks, max_age = self._fetch(url)
        fetched_at = self._clock()
        with self._lock:
            self._cache[url] = _Entry(jwks, fetched_at, fetched_at + max_age)
        return jwks

    def _fetch(self, url: str) -> tuple[dict[str, Any], int]:
        try:
            check_public_url(url, allow_private=self._allow_private)
        except ValueError as exc:
            raise JwksFetchError(f"JWKS URL refused: {exc}") from exc
        deadline = self._clock() + self._timeout
        body = bytearray()
        try:
            with self._client.stream(
                "GET",
                url,
                headers={"Accept": "application/json, application/jwk-set+json"},
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    raise JwksFetchError(f"JWKS URL answered HTTP {response.status_code}")
                # httpx timeouts are per read; the deadline bounds the whole transfer (slow drip).
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self._max_bytes:
                        raise JwksFetchError(f"JWKS larger than {self._max_bytes} bytes")
                    if self._clock() > deadline:
                        raise JwksFetchError("JWKS fetch exceeded its deadline")
                cache_control = response.headers.get("cache-control")
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"JWKS fetch failed: {type(exc).__name__}") from exc
        try:
            jwks = json.loads(bytes(body))
        except ValueError as exc:
            raise JwksFetchError("JWKS URL did not return JSON") from exc
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise JwksFetchError('JWKS URL did not return {"keys": [...]}')
        return jwks, cache_lifetime(cache_control, self._default_max_age)
