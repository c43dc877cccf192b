"""Positive-screen Flags: a PHQ-4 screen that needs follow-up reaches the clinic that submitted it.

CONTRACT.md "What counts as consent": a completed (or amended) response to the wellbeing and needs
assessment whose PHQ-4 screens positive — total 6 or more, or the anxiety (GAD-2) or depression (PHQ-2)
subscale 3 or more (Kroenke et al., Psychosomatics 2009;50:613-621) — raises an active Flag on the
patient for the submitting clinic, in the same transaction as the response. BHIVA's standards expect
mental-health screening to lead to action; a Flag is FHIR's "this needs attention" record
(http://hl7.org/fhir/R4/flag.html).

- One Flag per positive response. R4 Flag has no element linking it to its evidence, so the response
  and its PHQ-4 score Observations are named with the standard ``flag-detail`` extension
  (http://hl7.org/fhir/R4/extension-flag-detail.html). The response's score Observations are rewritten
  on every write, so the Flag's details are refreshed with them.
- A later negative response inactivates the clinic's active Flags for that patient raised by responses
  authored no later than it (status ``inactive``, ``period.end`` now). "Later" is by ``authored``:
  back-entering an older negative assessment does not silence a newer positive one.
- A write of the same response re-evaluates it: no longer positive (or no longer scored) inactivates its
  own Flag; deleted, or marked entered-in-error, marks its Flag ``entered-in-error``.
- The Flag is the clinic's alone: one access grant (reason ``author``) to the response's author
  organisation. Partners may not read the type at all (``access.policy``) and no grant is ever made to
  them. Clients never write Flags (the type is read-only in ``rest.registry``); the hub writes them
  through ResourceStore, so index rows and the grant are written here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_profiles import FLAG_CODE_SYSTEM
from service.assessment.scoring import Score
from service.audit import record
from service.rest.context import Context
from service.search.extract import extract_index_rows
from service.storage import search_sql
from service.storage.resources import Stored

FLAG_DETAIL_URL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
AUTHOR_REASON = "author"
POSITIVE_SCREEN = "phq4-positive-screen"
_TOTAL_CUTOFF = 6  # Kroenke 2009: 6-8 moderate, 9-12 severe
_SUBSCALES = ("phq4-anxiety", "phq4-depression")
_PHQ4_SCORES = ("phq4-total", *_SUBSCALES)
_QR = "QuestionnaireResponse"
_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/flag-category",
            "code": "clinical",
            "display": "Clinical",
        }
    ]
}
_DISPLAY = "Positive PHQ-4 screen: follow up mental wellbeing"


def screen(scores: list[Score]) -> bool | None:
    """True: positive; False: negative; None: the PHQ-4 was not fully answered, so it says nothing."""
    by_code = {s.code: s.value for s in scores}
    if any(by_code.get(code, 0) >= 3 for code in _SUBSCALES):
        return True
    total = by_code.get("phq4-total")
    if total is None:
        return None
    return total >= _TOTAL_CUTOFF


def reevaluate(
    ctx: Context, stored: Stored, old: Stored | None, scores: list[Score], observations: list[Stored]
) -> None:
    """Raise, refresh or inactivate the Flags of one response write (same transaction)."""
    reference = f"{_QR}/{stored.id}"
    content = stored.content
    patient = _patient_of(ctx, content)
    targets = {p for p in (patient, _patient_of(ctx, old.content if old else None)) if p}
    flags = search_sql.referencing(ctx.conn, "Flag", "patient", [("Patient", p) for p in sorted(targets)])
    own = [f for f in flags if _status(f) == "active" and reference in _details(f)]
    withdrawn = content is None or stored.deleted or content.get("status") == "entered-in-error"
    result = None if withdrawn else screen(scores)
    clinic = None if content is None else _clinic_of(ctx, content)
    evidence = [reference] + [f"Observation/{o.id}" for o in observations if _score_code(o) in _PHQ4_SCORES]
    if result is True:
        if own and _details(own[0]) != evidence:
            _write(ctx, own[0], {**_body(own[0]), "extension": _detail_extensions(evidence)})
        elif not own and clinic is not None and patient is not None:
            _raise(ctx, patient, clinic, evidence)
        own = own[1:]  # one Flag per response: close any duplicate
    for flag in own:
        _close(ctx, flag, "entered-in-error" if withdrawn else "inactive")
    if result is False and clinic is not None and content is not None:
        authored = _when(content.get("authored"))
        for flag in flags:
            if _status(flag) == "active" and reference not in _details(flag) and _author(flag) == clinic:
                raised = _source_authored(ctx, flag)
                if authored is None or raised is None or raised <= authored:
                    _close(ctx, flag, "inactive")


def _raise(ctx: Context, patient: str, clinic: str, evidence: list[str]) -> None:
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "extension": _detail_extensions(evidence),
        "status": "active",
        "category": [_CATEGORY],
        "code": {
            "coding": [{"system": FLAG_CODE_SYSTEM, "code": POSITIVE_SCREEN, "display": _DISPLAY}],
            "text": _DISPLAY,
        },
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": ctx.instant},
        "author": {"reference": f"Organization/{clinic}"},
    }
    created = ctx.store.create(
        "Flag", flag, extract_index_rows(flag), now=ctx.now, grants=[(clinic, AUTHOR_REASON)]
    )
    record.access(ctx, "create", [created])


def _close(ctx: Context, flag: Stored, status: str) -> None:
    body = _body(flag)
    body["status"] = status
    body["period"] = {**(body.get("period") or {}), "end": ctx.instant}
    _write(ctx, flag, body)


def _write(ctx: Context, flag: Stored, body: dict[str, Any]) -> None:
    current = ctx.store.current_for_write("Flag", flag.id) or flag
    updated = ctx.store.update(current, body, extract_index_rows(body), now=ctx.now)
    record.access(ctx, "update", [updated])


def _body(flag: Stored) -> dict[str, Any]:
    return {k: v for k, v in (flag.content or {}).items() if k != "meta"}


def _detail_extensions(evidence: list[str]) -> list[dict[str, Any]]:
    return [{"url": FLAG_DETAIL_URL, "valueReference": {"reference": ref}} for ref in evidence]


def _details(flag: Stored) -> list[str]:
    return [
        str(ext.get("valueReference", {}).get("reference"))
        for ext in (flag.content or {}).get("extension", [])
        if ext.get("url") == FLAG_DETAIL_URL
    ]


def _status(flag: Stored) -> str | None:
    return (flag.content or {}).get("status")


def _author(flag: Stored) -> str | None:
    ref = str((flag.content or {}).get("author", {}).get("reference", ""))
    return ref.removeprefix("Organization/") if ref.startswith("Organization/") else None


def _score_code(observation: Stored) -> str | None:
    codings = (observation.content or {}).get("code", {}).get("coding", [])
    return str(codings[0].get("code")) if codings else None


def _source_authored(ctx: Context, flag: Stored) -> datetime | None:
    """When the response that raised ``flag`` was authored (None when unknown: it counts as earlier)."""
    for ref in _details(flag):
        if ref.startswith(f"{_QR}/"):
            source = ctx.store.current(_QR, ref.split("/", 1)[1])
            if source is not None and source.content is not None:
                return _when(source.content.get("authored"))
    return None


def _when(value: object) -> datetime | None:
    # QuestionnaireResponse.authored is a dateTime; compare instants, not strings (offsets differ).
    # A partial date ("2026-11") has no instant, so it is treated as unknown.
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _local(ctx: Context, reference: object) -> tuple[str, str] | None:
    # Relative ``Type/id``, or absolute on this server's base (http://hl7.org/fhir/R4/references.html).
    if not isinstance(reference, str):
        return None
    base = ctx.base_url.rstrip("/") + "/"
    ref = reference[len(base) :] if reference.startswith(base) else reference
    parts = ref.split("/_history/", 1)[0].strip("/").split("/")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) and "://" not in ref else None


def _patient_of(ctx: Context, content: dict[str, Any] | None) -> str | None:
    """The id of the Patient a response is about (None for any other subject)."""
    target = _local(ctx, ((content or {}).get("subject") or {}).get("reference"))
    return target[1] if target is not None and target[0] == "Patient" else None


def _clinic_of(ctx: Context, qr: dict[str, Any]) -> str | None:
    """The organisation that submitted the response: its author (an Organization, or a PractitionerRole's
    organization), else the submitting clinic itself."""
    target = _local(ctx, (qr.get("author") or {}).get("reference"))
    if target is not None and target[0] == "Organization":
        return target[1]
    if target is not None and target[0] == "PractitionerRole":
        role = ctx.store.current("PractitionerRole", target[1])
        org = _local(ctx, ((role.content or {}).get("organization") or {}).get("reference")) if role else None
        if org is not None and org[0] == "Organization":
            return org[1]
    return ctx.caller.organization_id if ctx.caller.role == "clinic" else None
