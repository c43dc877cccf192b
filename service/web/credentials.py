"""What a person proves at sign-in: a password (Argon2id) and a second factor (TOTP, or a recovery code).

- Passwords: argon2-cffi's ``PasswordHasher`` (Argon2id with the RFC 9106 low-memory profile); hashes are
  re-made when the parameters change (``needs_rehash``). At least 12 characters, no other composition
  rules (NCSC password guidance: length, not complexity).
- TOTP (RFC 6238) through ``pyotp``: SHA-1, 6 digits, 30-second steps, the authenticator apps' default;
  one step of clock drift either way. The matched step is returned so the caller can refuse a code
  used before (RFC 6238 section 5.2: "the verifier MUST NOT accept the second attempt of the same OTP").
- Recovery codes: ten random codes of about 59 bits each, printed once and stored as SHA-256 (their entropy
  makes a slow hash unnecessary, and checking one is a single indexed delete).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ISSUER = "Wraparound"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # Argon2 takes any length; a bound keeps a hostile form post cheap to refuse
RECOVERY_CODES = 10
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper and typed back
_STEP_DRIFT = 1

_HASHER = PasswordHasher()


def password_problem(password: str) -> str | None:
    """Why the password cannot be used, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Checks against a throwaway hash when there is no account, so both cost the same time."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _HASHER.check_needs_rehash(password_hash)


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 section 4 recommends


def provisioning_uri(secret: str, email: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app enrols from (also as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code this is (within the drift allowed), or None."""
    digits = code.replace(" ", "")
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-_STEP_DRIFT, _STEP_DRIFT + 1):
        if hmac.compare_digest(totp.generate_otp(current + offset), digits):
            return current + offset
    return None


def new_recovery_codes() -> list[str]:
    return ["-".join(_chunk(_random_code(12), 4)) for _ in range(RECOVERY_CODES)]


def hash_recovery_code(code: str) -> str | None:
    """The stored form of a recovery code as typed (case, spaces and dashes ignored), or None."""
    cleaned = "".join(ch for ch in code.lower() if ch not in " -")
    if len(cleaned) != 12 or any(ch not in _CODE_ALPHABET for ch in cleaned):
        return None
    return hashlib.sha256(cleaned.encode()).hexdigest()


def _random_code(length: int) -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(length))


def _chunk(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]
