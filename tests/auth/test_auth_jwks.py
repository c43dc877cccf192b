from __future__ import annotations

from typing import Any

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, RSAKey

from auth.jwks import validate_registration_jwks


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "ec-1"})


def public(key: RSAKey | ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def test_accepts_public_rsa_and_ec_keys_and_drops_extras(rsa_key: RSAKey, ec_key: ECKey) -> None:
    rsa = public(rsa_key) | {"x5u": "https://evil.example/cert", "use": "sig", "alg": "RS384"}
    cleaned = validate_registration_jwks({"keys": [rsa, public(ec_key)]})
    assert [k["kid"] for k in cleaned["keys"]] == ["rsa-1", "ec-1"]
    assert "x5u" not in cleaned["keys"][0]
    assert cleaned["keys"][0]["alg"] == "RS384"
    assert cleaned["keys"][1]["crv"] == "P-384"


def test_refuses_private_key(rsa_key: RSAKey) -> None:
    with pytest.raises(ValueError, match="private key material"):
        validate_registration_jwks({"keys": [dict(rsa_key.as_dict(private=True))]})


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k", "oth"])
def test_refuses_any_private_member(ec_key: ECKey, member: str) -> None:
    with pytest.raises(ValueError, match=member):
        validate_registration_jwks({"keys": [public(ec_key) | {member: "AQAB"}]})


def test_refuses_small_rsa_key() -> None:
    with pytest.warns(SecurityWarning):
        small = RSAKey.generate_key(1024, parameters={"kid": "small"})
    with pytest.raises(ValueError, match="1024 bits is too small"):
        validate_registration_jwks({"keys": [public(small)]})


def test_refuses_duplicate_kid(rsa_key: RSAKey, ec_key: ECKey) -> None:
    ec = public(ec_key) | {"kid": "rsa-1"}
    with pytest.raises(ValueError, match="duplicate kid"):
        validate_registration_jwks({"keys": [public(rsa_key), ec]})


def test_refuses_oct_key() -> None:
    oct_key = dict(OctKey.generate_key(256, parameters={"kid": "sym"}).as_dict(private=False))
    with pytest.raises(ValueError, match="oct"):
        validate_registration_jwks({"keys": [oct_key]})


def test_refuses_key_without_kid(rsa_key: RSAKey) -> None:
    key = public(rsa_key)
    del key["kid"]
    with pytest.raises(ValueError, match="kid"):
        validate_registration_jwks({"keys": [key]})


def test_refuses_unlisted_curve() -> None:
    key = dict(ECKey.generate_key("secp256k1", parameters={"kid": "k1"}).as_dict(private=False))
    with pytest.raises(ValueError, match="curve"):
        validate_registration_jwks({"keys": [key]})


@pytest.mark.parametrize("jwks", [{}, {"keys": {}}, {"keys": []}, [], {"keys": ["x"]}])
def test_refuses_bad_shape(jwks: Any) -> None:
    with pytest.raises(ValueError, match=r"JWKS|keys|object"):
        validate_registration_jwks(jwks)


def test_refuses_garbage_key_numbers(ec_key: ECKey) -> None:
    with pytest.raises(ValueError, match="not a valid EC public key"):
        validate_registration_jwks({"keys": [public(ec_key) | {"x": public(ec_key)["y"]}]})


def test_refuses_encryption_keys(rsa_key: RSAKey) -> None:
    with pytest.raises(ValueError, match="use"):
        validate_registration_jwks({"keys": [public(rsa_key) | {"use": "enc"}]})
