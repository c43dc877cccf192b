"""A short-lived in-process cache of access-token lookups.

Every FHIR request presents a token; looking it up costs a database round trip and a
threadpool hop. Entries live at most ``TTL_SECONDS`` (and never past the token's own
expiry), so removing a client takes effect in other processes within that time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from auth.tokens import AccessTokenClaims as TokenInfo

TTL_SECONDS = 10.0
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[TokenInfo, float]] = {}

    def get(self, token_hash: str) -> TokenInfo | None:
        entry = self._entries.get(token_hash)  # one dict lookup: atomic, no lock needed
        if entry is None:
            return None
        info, until = entry
        if time.monotonic() >= until:
            with self._lock:
                self._entries.pop(token_hash, None)
            return None
        return info

    def put(self, token_hash: str, info: TokenInfo) -> None:
        # One deadline on the monotonic clock: the TTL or the token's own expiry, whichever is first,
        # so a hit reads one clock. The expiry is converted once; at most TTL_SECONDS later the entry
        # goes anyway, so a step of the wall clock cannot keep an expired token alive for longer.
        now = time.monotonic()
        left = (info.expires_at - datetime.now(UTC)).total_seconds()
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = (info, now + min(TTL_SECONDS, left))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
