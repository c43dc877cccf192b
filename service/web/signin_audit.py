"""AuditEvents for signing in and out of the web app, as the person at their organisation.

Page views and actions are audited by the domain layer (``person.run``); who signed in, when, from
where, and who was refused, is audited here: the access log a privacy officer reads first (NHS Data
Security and Protection Toolkit, "who accessed what"). DICOM's security-alert vocabulary, as IHE ATNA
records a login: type ``110114`` User Authentication, subtype ``110122`` Login or ``110123`` Logout.

A refused attempt is recorded only for an address that has an account (as that person, outcome 4).
Whatever else was typed into the email field (another address, or a password typed in the wrong box)
is recorded nowhere: the lockout keeps only a keyed digest of it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from service.audit import record
from service.web.person import caller_for
from service.web.signin import Person

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_TYPE = {"system": _DCM, "code": "110114", "display": "User Authentication"}
_SUBTYPE = {
    "login": {"system": _DCM, "code": "110122", "display": "Login"},
    "logout": {"system": _DCM, "code": "110123", "display": "Logout"},
}


def write(
    conn: Connection, what: str, person: Person, *, succeeded: bool, source: str, now: datetime
) -> None:
    event = record.build_event(
        caller=caller_for(person, source),
        action="operation",
        now=now,
        status=200 if succeeded else 401,
        description=None if succeeded else "Sign-in refused",
        subtype=_SUBTYPE[what],
    )
    event["type"] = _TYPE
    record.write_event(conn, event, now)
