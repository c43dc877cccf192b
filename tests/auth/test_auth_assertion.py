from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import JWSRegistry

from auth.assertion import (
    AssertionRejected,
    ClientKeys,
    VerifiedClient,
    verify_client_assertion,
)
from auth.jwks_fetcher import JwksFetcher

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOKEN_URL = "https://hub.example.org/auth/token"
CLIENT = "clinic-a"
JWKS_URL = "https://clinic-a.example.org/.well-known/jwks.json"
Key = RSAKey | ECKey


@dataclass(frozen=True)
class Keys:
    rsa: RSAKey  # kid rsa-1, registered
    ec: ECKey  # kid ec-1, P-384, registered
    ec256: ECKey  # kid ec256, P-256, registered
    intruder: RSAKey  # kid rsa-1 too, NOT registered
    small: RSAKey  # 1024 bits, kid small

    def jwks(self, *keys: Key) -> dict[str, Any]:
        return {"keys": [dict(k.as_dict(private=False)) for k in keys]}

    @property
    def registered(self) -> dict[str, Any]:
        return self.jwks(self.rsa, self.ec, self.ec256)


@pytest.fixture(scope="module")
def keys() -> Keys:
    with pytest.warns(SecurityWarning):
        small = RSAKey.generate_key(1024, parameters={"kid": "small"})
    return Keys(
        rsa=RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}),
        ec=ECKey.generate_key("P-384", parameters={"kid": "ec-1"}),
        ec256=ECKey.generate_key("P-256", parameters={"kid": "ec256"}),
        intruder=RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}),
        small=small,
    )


class MemoryJtiStore:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], datetime] = {}

    def remember(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        if (client_id, jti) in self.seen:
            return False
        self.seen[client_id, jti] = expires_at
        return True


class FakeFetcher:
    """Returns the given key sets in turn (the last one repeatedly) and records every call."""

    def __init__(self, *sets: dict[str, Any]) -> None:
        self.sets = sets
        self.calls: list[tuple[str, bool]] = []

    def get(self, url: str, *, force_refresh: bool = False) -> dict[str, Any]:
        self.calls.append((url, force_refresh))
        if not self.sets:
            raise ValueError("unreachable")
        return self.sets[min(len(self.calls), len(self.sets)) - 1]


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": CLIENT,
        "sub": CLIENT,
        "aud": TOKEN_URL,
        "exp": int((NOW + timedelta(minutes=4)).timestamp()),
        "iat": int(NOW.timestamp()),
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key | OctKey, alg: str, body: dict[str, Any] | None = None, **header: Any) -> str:
    head = {"alg": alg, "typ": "JWT", "kid": key.kid} | header
    head = {k: v for k, v in head.items() if v is not None}
    registry = JWSRegistry(algorithms=[alg], strict_check_header=False)
    registry.max_header_length = 4096
    return jwt.encode(head, body or claims(), key, registry=registry, default_type=None)


def forge(header: dict[str, Any], body: dict[str, Any]) -> str:
    def seg(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{seg(header)}.{seg(body)}.c2lnbmF0dXJl"


def verify(
    assertion: str,
    registered: ClientKeys,
    *,
    store: MemoryJtiStore | None = None,
    fetcher: Any = None,
    now: datetime = NOW,
) -> VerifiedClient:
    return verify_client_assertion(
        assertion,
        token_url=TOKEN_URL,
        lookup_client=lambda cid: registered if cid == registered.client_id else None,
        jti_store=store or MemoryJtiStore(),
        now=now,
        fetcher=fetcher,
    )


def static(keys: Keys) -> ClientKeys:
    return ClientKeys(CLIENT, jwks=keys.registered)


def rejected(reason: str, assertion: str, registered: ClientKeys, **kwargs: Any) -> AssertionRejected:
    with pytest.raises(AssertionRejected) as info:
        verify(assertion, registered, **kwargs)
    assert info.value.reason == reason
    assert info.value.error == "invalid_client"
    # The caller only learns a coarse category, never the precise reason.
    assert re.fullmatch(
        r"client assertion rejected \((malformed|header|key|client|signature|claims|replay)\)",
        info.value.description,
    )
    return info.value


# --- success ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("which", "alg"), [("rsa", "RS384"), ("ec", "ES384")])
def test_valid_assertion_is_accepted(keys: Keys, which: str, alg: str) -> None:
    store = MemoryJtiStore()
    body = claims(jti="abc-123")
    result = verify(sign(getattr(keys, which), alg, body), static(keys), store=store)
    assert result == VerifiedClient(CLIENT, "abc-123", datetime.fromtimestamp(body["exp"], UTC))
    assert store.seen[CLIENT, "abc-123"] == result.expires_at + timedelta(seconds=60)


def test_typ_is_case_insensitive_and_aud_may_be_single_element_list(keys: Keys) -> None:
    token = sign(keys.rsa, "RS384", claims(aud=[TOKEN_URL]), typ="jwt")
    assert verify(token, static(keys)).client_id == CLIENT


def test_recently_expired_within_leeway_is_accepted(keys: Keys) -> None:
    body = claims(exp=int((NOW - timedelta(seconds=30)).timestamp()))
    assert verify(sign(keys.rsa, "RS384", body), static(keys)).jti == body["jti"]


def test_naive_now_is_a_programming_error(keys: Keys) -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify(sign(keys.rsa, "RS384"), static(keys), now=NOW.replace(tzinfo=None))


# --- header ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "abc", "a.b", "a.b.c.d.e", "e30.e30.", "bm90IGpzb24.e30.c2ln"])
def test_malformed(keys: Keys, text: str) -> None:
    rejected("malformed", text, static(keys))


def test_malformed_payload_not_object(keys: Keys) -> None:
    header = {"alg": "RS384", "typ": "JWT", "kid": "rsa-1"}
    token = forge(header, {}).split(".")
    token[1] = base64.urlsafe_b64encode(b"[1]").rstrip(b"=").decode()
    rejected("malformed", ".".join(token), static(keys))


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "HS384", "RS256", "ES256", "PS384", None])
def test_alg_not_allowed(keys: Keys, alg: str | None) -> None:
    rejected("alg-not-allowed", forge({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims()), static(keys))


def test_hmac_with_public_key_as_secret_is_refused(keys: Keys) -> None:
    # The RS/HS confusion attack: HMAC keyed with the public key text.
    secret = OctKey.import_key(json.dumps(keys.rsa.as_dict(private=False)), parameters={"kid": "rsa-1"})
    rejected("alg-not-allowed", sign(secret, "HS384"), static(keys))


@pytest.mark.parametrize("typ", [None, "at+jwt", "JWS", 1])
def test_typ(keys: Keys, typ: Any) -> None:
    rejected("typ", forge({"alg": "RS384", "typ": typ, "kid": "rsa-1"}, claims()), static(keys))


@pytest.mark.parametrize("kid", [None, "", 7])
def test_kid_missing(keys: Keys, kid: Any) -> None:
    rejected("kid-missing", forge({"alg": "RS384", "typ": "JWT", "kid": kid}, claims()), static(keys))


def test_kid_unknown(keys: Keys) -> None:
    other = RSAKey.import_key(dict(keys.intruder.as_dict(private=True)) | {"kid": "nope"})
    rejected("kid-unknown", sign(other, "RS384"), static(keys))


def test_kid_ambiguous(keys: Keys) -> None:
    twice = ClientKeys(CLIENT, jwks=keys.jwks(keys.rsa, keys.intruder))
    rejected("kid-ambiguous", sign(keys.rsa, "RS384"), twice)


@pytest.mark.parametrize(
    ("which", "alg"),
    [("rsa", "ES384"), ("ec", "RS384"), ("ec256", "ES384")],
)
def test_alg_key_mismatch(keys: Keys, which: str, alg: str) -> None:
    key = getattr(keys, which)
    # Header claims alg over a key of another type/curve; signature is irrelevant, never reached.
    rejected("alg-key-mismatch", forge({"alg": alg, "typ": "JWT", "kid": key.kid}, claims()), static(keys))


def test_alg_key_mismatch_with_key_alg_member(keys: Keys) -> None:
    pinned = keys.jwks(keys.rsa)
    pinned["keys"][0]["alg"] = "RS512"
    rejected("alg-key-mismatch", sign(keys.rsa, "RS384"), ClientKeys(CLIENT, jwks=pinned))


# --- client identity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [claims(sub="someone-else"), claims(iss=None), claims(sub=None), claims(iss=5)]
)
def test_iss_sub(keys: Keys, body: dict[str, Any]) -> None:
    rejected("iss-sub", sign(keys.rsa, "RS384", body), static(keys))


def test_unknown_client(keys: Keys) -> None:
    body = claims(iss="stranger", sub="stranger")
    rejected("unknown-client", sign(keys.rsa, "RS384", body), static(keys))


# --- signature -------------------------------------------------------------------------------


def test_signature_by_unregistered_key_with_registered_kid(keys: Keys) -> None:
    rejected("signature", sign(keys.intruder, "RS384"), static(keys))


def test_tampered_payload(keys: Keys) -> None:
    head, _, sig = sign(keys.ec, "ES384").split(".")
    body = base64.urlsafe_b64encode(json.dumps(claims(jti="other")).encode()).rstrip(b"=").decode()
    rejected("signature", f"{head}.{body}.{sig}", static(keys))


def test_embedded_jwk_header_is_never_key_material(keys: Keys) -> None:
    # The intruder signs with its own key and embeds that key in the header; it must not be used.
    attacker = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    token = sign(attacker, "ES384", jwk=dict(attacker.as_dict(private=False)), x5u="https://evil.example/c")
    fetcher = FakeFetcher(keys.registered)
    rejected("signature", token, static(keys), fetcher=fetcher)
    assert fetcher.calls == []


# --- claims ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "aud",
    [None, "https://hub.example.org/other", [TOKEN_URL, "https://elsewhere"], [], TOKEN_URL + "/"],
)
def test_aud(keys: Keys, aud: Any) -> None:
    rejected("aud", sign(keys.rsa, "RS384", claims(aud=aud)), static(keys))


def test_exp_missing(keys: Keys) -> None:
    rejected("exp-missing", sign(keys.rsa, "RS384", claims(exp=None)), static(keys))


def test_exp_not_a_number_is_malformed(keys: Keys) -> None:
    rejected("malformed", sign(keys.rsa, "RS384", claims(exp="soon")), static(keys))


def test_exp_past(keys: Keys) -> None:
    body = claims(exp=int((NOW - timedelta(seconds=61)).timestamp()))
    rejected("exp-past", sign(keys.rsa, "RS384", body), static(keys))


@pytest.mark.parametrize("ahead", [301, 330, 360, 361, 3600])
def test_exp_too_far(keys: Keys, ahead: int) -> None:
    # The 60 s leeway applies to the past only: five minutes ahead is the horizon.
    body = claims(exp=int((NOW + timedelta(seconds=ahead)).timestamp()))
    rejected("exp-too-far", sign(keys.rsa, "RS384", body), static(keys))


def test_exp_exactly_five_minutes_ahead_is_accepted(keys: Keys) -> None:
    body = claims(exp=int((NOW + timedelta(seconds=300)).timestamp()))
    assert verify(sign(keys.rsa, "RS384", body), static(keys)).jti == body["jti"]


def test_assertion_over_8_kib_is_refused_before_parsing(keys: Keys) -> None:
    # Not even base64: it must be turned away on its size alone.
    rejected("too-large", "!" * (8 * 1024 + 1), static(keys))
    padded = sign(keys.rsa, "RS384", claims(pad="x" * 8192))
    assert len(padded) > 8 * 1024
    rejected("too-large", padded, static(keys))


def test_assertion_just_under_8_kib_is_verified(keys: Keys) -> None:
    token = sign(keys.rsa, "RS384", claims(pad="x" * 5000))
    assert len(token) <= 8 * 1024
    assert verify(token, static(keys)).client_id == CLIENT


def test_nbf_future(keys: Keys) -> None:
    body = claims(nbf=int((NOW + timedelta(seconds=90)).timestamp()))
    rejected("nbf-future", sign(keys.rsa, "RS384", body), static(keys))


def test_iat_future(keys: Keys) -> None:
    body = claims(iat=int((NOW + timedelta(seconds=90)).timestamp()))
    rejected("iat-future", sign(keys.rsa, "RS384", body), static(keys))


@pytest.mark.parametrize("jti", [None, "", 42])
def test_jti_missing(keys: Keys, jti: Any) -> None:
    rejected("jti-missing", sign(keys.rsa, "RS384", claims(jti=jti)), static(keys))


def test_jti_too_long(keys: Keys) -> None:
    assert verify(sign(keys.rsa, "RS384", claims(jti="j" * 255)), static(keys)).jti == "j" * 255
    rejected("jti-invalid", sign(keys.rsa, "RS384", claims(jti="j" * 256)), static(keys))


def test_jti_replay(keys: Keys) -> None:
    store = MemoryJtiStore()
    token = sign(keys.rsa, "RS384")
    verify(token, static(keys), store=store)
    rejected("jti-replay", token, static(keys), store=store)


# --- JWKS URL clients ------------------------------------------------------------------------


def url_client() -> ClientKeys:
    return ClientKeys(CLIENT, jwks_url=JWKS_URL)


def test_jwks_url_client_uses_fetcher(keys: Keys) -> None:
    fetcher = FakeFetcher(keys.registered)
    assert verify(sign(keys.ec, "ES384"), url_client(), fetcher=fetcher).client_id == CLIENT
    assert fetcher.calls == [(JWKS_URL, False)]


def test_unknown_kid_refreshes_once_then_fails(keys: Keys) -> None:
    fetcher = FakeFetcher(keys.jwks(keys.ec))
    rejected("kid-unknown", sign(keys.rsa, "RS384"), url_client(), fetcher=fetcher)
    assert fetcher.calls == [(JWKS_URL, False), (JWKS_URL, True)]


def test_rotated_key_found_after_refresh(keys: Keys) -> None:
    fetcher = FakeFetcher(keys.jwks(keys.ec), keys.jwks(keys.ec, keys.rsa))
    assert verify(sign(keys.rsa, "RS384"), url_client(), fetcher=fetcher).client_id == CLIENT
    assert fetcher.calls == [(JWKS_URL, False), (JWKS_URL, True)]


def test_jwks_unavailable(keys: Keys) -> None:
    rejected("jwks-unavailable", sign(keys.rsa, "RS384"), url_client(), fetcher=FakeFetcher())
    rejected("jwks-unavailable", sign(keys.rsa, "RS384"), url_client(), fetcher=None)


def test_fetched_weak_key_is_unacceptable(keys: Keys) -> None:
    token = sign(keys.small, "RS384")
    rejected("key-unacceptable", token, url_client(), fetcher=FakeFetcher(keys.jwks(keys.small)))


def test_jku_equal_to_registered_url_works_through_real_fetcher(keys: Keys) -> None:
    requested: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, json=keys.jwks(keys.rsa))

    # A client with both a static set (without the key) and a URL: the jku selects the URL.
    registered = ClientKeys(CLIENT, jwks=keys.jwks(keys.ec), jwks_url=JWKS_URL)
    with httpx.Client(transport=httpx.MockTransport(serve)) as http:
        fetcher = JwksFetcher(client=http, allow_private=True)
        result = verify(sign(keys.rsa, "RS384", jku=JWKS_URL), registered, fetcher=fetcher)
    assert result.client_id == CLIENT
    assert requested == [JWKS_URL]


@pytest.mark.parametrize("registered_url", [JWKS_URL, None])
def test_jku_different_is_rejected_without_fetch(keys: Keys, registered_url: str | None) -> None:
    fetcher = FakeFetcher(keys.registered)
    registered = ClientKeys(CLIENT, jwks=keys.registered, jwks_url=registered_url)
    token = sign(keys.rsa, "RS384", jku="https://evil.example/jwks.json")
    rejected("jku-mismatch", token, registered, fetcher=fetcher)
    assert fetcher.calls == []
