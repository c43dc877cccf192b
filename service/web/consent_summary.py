"""A Consent in one sentence for the person working the referral (never its JSON)."""

from __future__ import annotations

from typing import Any

from service.rest.context import Context
from service.web.listing import directory_name


def summarise(ctx: Context, consent: dict[str, Any]) -> str:
    provision = consent.get("provision") or {}
    kind = "Permits sharing" if provision.get("type") == "permit" else "Refuses sharing"
    names: dict[str, str] = {}
    actors = [
        directory_name(ctx, actor.get("reference"), names)
        for actor in provision.get("actor") or []
        if isinstance(actor, dict)
    ]
    who = f" with {', '.join(actors)}" if actors else " with every partner"
    given = str(consent.get("dateTime") or "")[:10]
    period = provision.get("period") or {}
    until = f", until {str(period['end'])[:10]}" if period.get("end") else ""
    status = str(consent.get("status") or "unknown")
    when = f", given {given}" if given else ""
    return f"{kind}{who}{when}{until} ({status})"
