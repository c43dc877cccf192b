"""The in-process token cache: an entry lives until its token expires or TTL_SECONDS pass, if sooner."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from auth.tokens import AccessTokenClaims
from service.api.token_cache import TTL_SECONDS, TokenCache


def _claims(lifetime: timedelta) -> AccessTokenClaims:
    return AccessTokenClaims("c", "org", "clinic", "system/*.rs", "j", datetime.now(UTC) + lifetime)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(time, "monotonic", fake)  # the module reads time.monotonic at each call
    return fake


def test_an_entry_goes_when_the_token_expires_if_that_is_before_the_ttl(clock: _Clock) -> None:
    cache = TokenCache()
    info = _claims(timedelta(seconds=3))
    cache.put("t", info)
    clock.now += 2.5
    assert cache.get("t") is info
    clock.now += 1.0  # past the token's expiry, well inside the TTL
    assert cache.get("t") is None
    assert cache.get("t") is None  # and it is gone, not just hidden


def test_an_entry_goes_after_the_ttl_however_long_the_token_has(clock: _Clock) -> None:
    cache = TokenCache()
    info = _claims(timedelta(hours=1))
    cache.put("t", info)
    clock.now += TTL_SECONDS - 0.1
    assert cache.get("t") is info
    clock.now += 0.2
    assert cache.get("t") is None


def test_a_token_already_expired_is_never_served(clock: _Clock) -> None:
    cache = TokenCache()
    cache.put("t", _claims(timedelta(seconds=-1)))
    assert cache.get("t") is None
    assert cache.get("other") is None
