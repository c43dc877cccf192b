"""The worker's scheduled consent sweep, in a transaction of its own (``service.referrals.expiry``)."""

from __future__ import annotations

from service.access.caller import SYSTEM
from service.referrals import expiry
from service.rest.context import Context
from service.settings import Settings
from service.storage.database import Database


def sweep_lapsed_consents(db: Database, settings: Settings) -> int:
    with db.transaction(write=True) as conn:
        return expiry.sweep(Context(conn=conn, caller=SYSTEM, base_url=settings.fhir_base()))
