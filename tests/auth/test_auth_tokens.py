from __future__ import annotations

import hashlib

from auth.tokens import hash_token, new_access_token


def test_new_access_token_returns_token_and_its_hash() -> None:
    token, digest = new_access_token()
    assert len(token) >= 43  # 32 random bytes, base64url
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    assert hash_token(token) == digest


def test_tokens_are_unique() -> None:
    assert len({new_access_token()[0] for _ in range(100)}) == 100
