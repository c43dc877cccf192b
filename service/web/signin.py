"""Checking a sign-in: password, then the second factor, with lockout and backoff per email address.

No answer tells whether an email address has an account: an unknown address costs the same Argon2
verification as a known one (``credentials.verify_password``) and gets the same message, and failures
are counted per address typed, account or not, so a lockout appears for either alike. After
``LOCK_AFTER`` failures in a row an address is locked for 30 s, doubling with each further failure up to
15 minutes (OWASP Authentication Cheat Sheet, "account lockout"); a success clears the count.

The outcome is returned, not raised: a failure must be counted in a transaction that commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from service.delivery.secrets import SecretBox
from service.storage import accounts as storage
from service.web import credentials
from service.web.accounts import normalise_email, organization_live

LOCK_AFTER = 5
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
FORGET_AFTER = timedelta(days=1)
REFUSED = "The email address, password or one-time code is not right."


@dataclass(frozen=True)
class Person:
    """Someone signed in: the account and the organisation they act for."""

    user_id: str
    email: str
    organization_id: str
    role: str


@dataclass(frozen=True)
class Outcome:
    person: Person | None
    message: str = ""
    # The account the address belongs to, signed in or not: a refused attempt on a real account is
    # audited as that person (an address with no account is recorded nowhere but the lockout count).
    account: Person | None = None


def sign_in(
    conn: Connection, box: SecretBox, *, email: str, password: str, code: str, now: datetime
) -> Outcome:
    address = normalise_email(email)
    # Keyed, not a plain hash: what was typed may be a password typed into the wrong box.
    key = box.digest("web-signin-failures", address)
    storage.purge_failures(conn, now - FORGET_AFTER, now)
    failure = storage.lock_failures(conn, key, now)  # one attempt per address at a time
    user = storage.user_by_email(conn, address)
    account = Person(user.id, user.email, user.organization_id, user.role) if user is not None else None
    locked_until: datetime | None = failure.locked_until
    if locked_until is not None and locked_until > now:
        return Outcome(None, _locked_message(locked_until - now), account)
    passed = credentials.verify_password(user.password_hash if user else None, password)
    if passed and user is not None:
        # An organisation the directory removed or deactivated signs no one in (the same message).
        passed = organization_live(conn, user.organization_id) and _second_factor(conn, box, user, code, now)
    if not passed or user is None:
        failures = failure.failures + 1
        locked = _lock_until(failures, now)
        storage.save_failure(conn, key, failures, locked, now)
        return Outcome(None, _locked_message(locked - now) if locked else REFUSED, account)
    storage.clear_failures(conn, key)
    if credentials.needs_rehash(user.password_hash):
        storage.update_user(conn, user.id, {"password_hash": credentials.hash_password(password)})
    return Outcome(account, account=account)


def _second_factor(conn: Connection, box: SecretBox, user: Any, code: str, now: datetime) -> bool:
    step = credentials.totp_step(box.open(user.totp_secret).decode(), code, now)
    if step is not None:
        return storage.accept_totp_step(conn, user.id, step)
    code_hash = credentials.hash_recovery_code(code)
    return code_hash is not None and storage.use_recovery_code(conn, user.id, code_hash)


def _lock_until(failures: int, now: datetime) -> datetime | None:
    if failures < LOCK_AFTER:
        return None
    doublings = min(failures - LOCK_AFTER, 10)  # 30 s << 10 is past the longest lock already
    return now + min(LONGEST_LOCK, FIRST_LOCK * (1 << doublings))


def _locked_message(remaining: timedelta) -> str:
    seconds = max(1, int(remaining.total_seconds() + 0.999))
    wait = f"{seconds} seconds" if seconds < 120 else f"{(seconds + 59) // 60} minutes"
    return f"Too many failed sign-ins with this email address. Wait {wait} and try again."
