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

    def seal(self, plaintext: bytes) -> str:
        return self.fernet.encrypt(plaintext).decode()

    def open(self, token: str) -> bytes:
        try:
            return self.fernet.decrypt(token.encode())
        except InvalidToken:
            raise SecretUnreadable("stored secret cannot be decrypted with WRAPAROUND_SECRET_KEY") from None


def _parse(keys: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise SecretKeyMissing(HOW_TO)
    try:
        return MultiFernet([Fernet(k.encode()) for k in parts])
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
        return SecretBox(_parse(settings.secret_key))
    if settings.development:
        return SecretBox(_parse(_development_key()))
    raise SecretKeyMissing(HOW_TO)
