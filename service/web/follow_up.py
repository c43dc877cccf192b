"""A clinic's positive-screen Flags to follow up (``Flag?status=active``, the clinic's own: partners may
not read Flags at all), with the person each is about."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.rest import search
from service.rest.context import Context
from service.web import labels


@dataclass(frozen=True)
class FollowUp:
    person: str
    what: str
    since: str


def active_flags(ctx: Context) -> list[FollowUp]:
    bundle = search.search(
        ctx, "Flag", [("status", "active"), ("_include", "Flag:patient"), ("_count", "100")]
    )
    patients: dict[str, dict[str, Any]] = {}
    flags: list[dict[str, Any]] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == "Patient":
            patients[f"Patient/{resource.get('id')}"] = resource
        elif resource.get("resourceType") == "Flag":
            flags.append(resource)
    return [
        FollowUp(
            person=labels.human_name(patients.get(str((flag.get("subject") or {}).get("reference")))),
            what=labels.concept_text(flag.get("code")) or "Follow up",
            since=str((flag.get("period") or {}).get("start") or "")[:10],
        )
        for flag in flags
    ]
