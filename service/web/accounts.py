"""People's accounts (``wraparound users``): one Organization and one role each, always a second factor.

Adding an account that exists updates it (CONTRACT.md "Web app"): its organisation and role, its
password when one is given, and a fresh enrolment — a new TOTP secret and new recovery codes, printed
once. Every change ends the person's sessions, so a moved or re-enrolled person signs in again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from service.clients import parse_organization
from service.delivery.secrets import SecretBox
from service.errors import BadRequest
from service.storage import accounts as storage
from service.storage.resources import ResourceStore
from service.web import credentials

ROLES = ("partner", "clinic")
# Deliberately loose (RFC 5321 allows far more than a strict pattern would); it only keeps typos out.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class InvalidAccount(BadRequest):
    """An account that cannot be saved; the message says what to fix."""


@dataclass(frozen=True)
class Enrolment:
    email: str
    organization_id: str
    role: str
    created: bool
    otpauth_uri: str
    recovery_codes: list[str]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def organization_live(conn: Connection, organization_id: str) -> bool:
    """Whether a person may act for the Organization: in the directory, not deleted, not ``active: false``.

    Checked at every sign-in and every request (``sessions.resume``): when the directory removes or
    deactivates an organisation, its people lose access at once, not when an operator remembers them."""
    org = ResourceStore(conn).current("Organization", organization_id)
    return org is not None and not org.deleted and (org.content or {}).get("active") is not False


def check_email(email: str) -> str:
    cleaned = normalise_email(email)
    if len(cleaned) > 320 or not _EMAIL.match(cleaned):
        raise InvalidAccount(f"{email!r} is not an email address")
    return cleaned


def save_user(
    conn: Connection,
    box: SecretBox,
    *,
    email: str,
    organization: str,
    role: str,
    password: str | None,
    now: datetime,
) -> Enrolment:
    """Create or update the account; the enrolment (URI and recovery codes) is shown to the operator once."""
    address = check_email(email)
    organization_id = parse_organization(organization)
    if role not in ROLES:
        raise InvalidAccount(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not organization_live(conn, organization_id):
        raise InvalidAccount(f"Organization/{organization_id} is not in the hub's directory, or is inactive")
    existing = storage.user_by_email(conn, address)
    if password is None and existing is None:
        raise InvalidAccount("a new account needs a password")
    if password is not None and (problem := credentials.password_problem(password)):
        raise InvalidAccount(problem)
    secret = credentials.new_totp_secret()
    values = {
        "organization_id": organization_id,
        "role": role,
        "totp_secret": box.seal(secret.encode()),
        "totp_last_step": 0,
        "updated_at": now,
    }
    if password is not None:
        values["password_hash"] = credentials.hash_password(password)
    if existing is None:
        user_id = uuid.uuid4().hex
        storage.insert_user(conn, {"id": user_id, "email": address, "created_at": now, **values})
    else:
        user_id = existing.id
        storage.update_user(conn, user_id, values)
        storage.end_sessions_of(conn, user_id)
    codes = credentials.new_recovery_codes()
    storage.replace_recovery_codes(
        conn, user_id, [h for c in codes if (h := credentials.hash_recovery_code(c)) is not None]
    )
    return Enrolment(
        email=address,
        organization_id=organization_id,
        role=role,
        created=existing is None,
        otpauth_uri=credentials.provisioning_uri(secret, address),
        recovery_codes=codes,
    )


def remove_user(conn: Connection, email: str) -> bool:
    existing = storage.user_by_email(conn, normalise_email(email))
    if existing is None:
        return False
    storage.remove_user(conn, existing.id)
    return True
