"""Adapter secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) from the ``cryptography`` package.

``WRAPAROUND_SECRET_KEY`` holds one or more Fernet keys, comma-separated, newest first: the first
encrypts, all decrypt (``MultiFernet``), so a key is rotated by prepending a new one and re-saving.
Outside development mode the hub refuses to start without a key; in development mode (``make run``)
it keeps a generated key in ``wraparound.secret-key`` beside the working directory and says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.settings import Settings

log = logging.getLogger("wraparound.secrets")
DEV_KEY_FILE = Path("wraparound.secret-key")
HOW_TO = (
    "WRAPAROUND_SECRET_KEY is not set: it encrypts delivery secrets at rest. Make one with "
    "`wraparound secrets generate-key` and keep it in your secret store (or set WRAPAROUND_DEVELOPMENT=1 "
    "for a local key file in development)."
)


class SecretKeyMissing(RuntimeError):
    pass


class SecretUnreadable(RuntimeError):
    """A stored secret could not be decrypted (wrong or rotated-out WRAPAROUND_SECRET_KEY)."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class SecretBox:
    fernet: MultiFernet
    # The newest key, for keyed digests (``digest``, through HKDF): never used as it is.
    primary: bytes

    def seal(self, plaintext: bytes) -> str:
        return self.fernet.encrypt(plaintext).decode()

    def open(self, token: str) -> bytes:
        try:
            return self.fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretUnreadable("stored secret cannot be decrypted with WRAPAROUND_SECRET_KEY") from None

    def digest(self, purpose: str, value: str) -> str:
        """A keyed digest (HMAC-SHA256 under a key derived for ``purpose`` with HKDF, RFC 5869) of a
        value the hub must look up but never read back, such as whatever was typed as an email. Unlike a
        plain hash it cannot be reversed by guessing without the key. Rotating the newest key changes
        every digest: only use it for state the hub may forget."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        key = hkdf.derive(self.primary)
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(value.encode())
        return mac.finalize().hex()


def _parse(keys: str) -> SecretBox:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise SecretKeyMissing(HOW_TO)
    try:
        return SecretBox(MultiFernet([Fernet(k.encode()) for k in parts]), parts[0].encode())
    except ValueError:
        raise SecretKeyMissing(
            "WRAPAROUND_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
            "make one with `wraparound secrets generate-key`"
        ) from None


def _development_key() -> str:
    if DEV_KEY_FILE.exists():
        return DEV_KEY_FILE.read_text().strip()
    key = generate_key()
    # Owner-only: the key decrypts every adapter secret in this database.
    fd = os.open(DEV_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.warning("development mode: generated a secret key in %s (never use this in production)", DEV_KEY_FILE)
    return key


def box_for(settings: Settings) -> SecretBox:
    """The settings' key(s); raises SecretKeyMissing (with how to make one) when there is none."""
    if settings.secret_key:
        return _parse(settings.secret_key)
    if settings.development:
        return _parse(_development_key())
    raise SecretKeyMissing(HOW_TO)
