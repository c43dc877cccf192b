"""Consent for a referral: may the hub disclose this referral to this partner? (CONTRACT.md "What counts
as consent"; every rule, with its source, is in docs/adr/0009-consent-evaluation.md).

A referral carries special-category data (UK GDPR Art. 9), so the hub fails closed both ways:

- **Unlock (opt-in).** A Consent permits a disclosure only when it is a *disclosure consent*: ``active``,
  about the Patient, scope ``patient-privacy`` (http://terminology.hl7.org/CodeSystem/consentscope; a
  ``treatment``, ``research`` or ``adr`` Consent never unlocks), with a ``dateTime`` (when it was given), a
  stated root ``provision.type``, a root period covering now, and a permit that names the partner (or one
  of its HealthcareServices) as an actor in a recipient role: v3 ParticipationType IRCP, PRCP or REFT.
  The permit may be the root or a nested exception to it (R4 consent.html#provision: nested provisions are
  exceptions to their parent; the most specific one that applies decides). A permit without evidence
  (``sourceAttachment`` / ``sourceReference``) still unlocks, with a warning (ADR 0009).
- **Block.** An active Consent about the Patient blocks the partner when its provisions deny it: a deny
  that names the partner (or its service) *in any role*, or names no actor at all, and whose period covers
  now. A deny naming the partner explicitly blocks wherever it sits in the provision tree (unless a
  permit nested inside it makes an exception for the partner); scope does not matter. Deny wins over
  permit, across Consents and among sibling provisions.
- **Purpose.** A referral is a disclosure for care (``purpose``): a permit limited by purpose needs a care
  purpose; a deny limited *only* to non-care purposes (research, marketing, payment) does not block.
- **Unknown conditions.** An action restriction (the hub is given no action) or any data restriction
  (``securityLabel``, ``class``, ``code``, ``dataPeriod``, ``data``: the hub sends the whole referral) or an
  unreadable period makes a provision apply "maybe": a maybe-deny denies, a maybe-permit does not permit.
- **Decline.** When the patient's latest completed assessment records a peer-support decline, a referral
  to a peer-support service needs a disclosure consent given *after* it (``decline``, see ``decline.py``).
- A root provision without ``type`` is inferred from ``policyRule`` (v3 ActCode OPTOUT -> deny, OPTIN ->
  permit) so that its exceptions are read; an inferred permit never unlocks, an inferred deny blocks.
- Period bounds use their precision (R4 Period: "the end value includes any matching date/time"); dates
  and times without a zone are Europe/London (``_period``); a naive ``now`` is UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from service.referrals._period import certainly_after, period_covers
from service.referrals._provisions import (
    DENY,
    PERMIT_ANYONE,
    PERMIT_NAMED,
    V3_ACT_CODE,
    Request,
    codings,
    explicit_deny,
    other_roles,
    provision_outcomes,
)
from service.referrals._provisions import (
    RECIPIENT_ROLE_CODES as RECIPIENT_ROLE_CODES,
)
from service.referrals._provisions import (
    actor_names as actor_names,
)
from service.referrals._provisions import (
    normalise_reference as normalise_reference,
)

Verdict = Literal["permit", "deny"]

CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
# How far a Consent got towards unlocking, for naming the best candidate when none does.
_STATUS, _PATIENT, _SCOPE, _DATED, _TYPED, _PERIOD, _PROVISION, _AFTER_DECLINE = range(8)


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    # Short reason, safe for logs and partners: Consent ids and rules, never clinical detail.
    rule: str
    consent_id: str | None
    # True when the permission rests on ``consent_id`` (opt-in, or a lifted decline): access lapses with it.
    rests_on_consent: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decline:
    """A recorded decline of peer support: the assessment that records it, and when it was authored."""

    response_id: str
    authored: str


def evaluate_referral_consent(
    consents: Sequence[dict[str, Any]],
    *,
    patient_ref: str,
    partner_org_ref: str,
    model: Literal["opt-in", "opt-out"],
    now: datetime,
    action: Mapping[str, Any] | None = None,
    partner_service_refs: Collection[str] = (),
    decline: Decline | None = None,
) -> ConsentDecision:
    """Decide whether a referral for ``patient_ref`` may go to ``partner_org_ref`` under ``model``.

    ``partner_service_refs``: the HealthcareServices a Consent actor may name instead of the Organization.
    ``decline``: a peer-support decline that applies to this referral (the caller decides that it does).
    """
    request = _request(patient_ref, partner_org_ref, partner_service_refs, now, action)
    for consent in consents:
        if _in_force(consent, request) and _blocks(consent, request):
            return ConsentDecision(False, _deny_rule(consent, request), _id(consent))
    unlocking: list[dict[str, Any]] = []
    best: tuple[int, dict[str, Any] | None, str] = (-1, None, "")
    for consent in consents:
        problem = _unlock_problem(consent, request)
        if (
            problem is None
            and decline is not None
            and not certainly_after(consent.get("dateTime"), decline.authored)
        ):
            problem = (_AFTER_DECLINE, f"{_name(consent)} was given before that decline")
        if problem is None:
            unlocking.append(consent)
        elif problem[0] > best[0]:
            best = (problem[0], consent, problem[1])
    if unlocking:
        chosen = unlocking[0]
        if model == "opt-in" or decline is not None:
            return ConsentDecision(
                True,
                f"{model} service: {_name(chosen)} permits disclosure to the partner",
                _id(chosen),
                rests_on_consent=True,
                warnings=tuple(w for w in [evidence_warning(chosen)] if w),
            )
        return ConsentDecision(True, "opt-out service: no active Consent denies this partner", _id(chosen))
    if decline is not None:
        detail = f" ({best[2]})" if best[1] is not None else ""
        return ConsentDecision(
            False,
            f"the patient declined peer support in QuestionnaireResponse/{decline.response_id}: a "
            f"peer-support referral needs a newer active permit Consent naming the partner{detail}",
            _id(best[1]) if best[1] is not None else None,
        )
    if model == "opt-out":
        return ConsentDecision(True, "opt-out service: no active Consent denies this partner", None)
    if best[1] is None:
        return ConsentDecision(
            False, "opt-in service requires an active permit Consent naming the partner; there is none", None
        )
    return ConsentDecision(False, best[2], _id(best[1]))


def consent_verdict(
    consent: dict[str, Any],
    *,
    patient_ref: str,
    partner_org_ref: str,
    now: datetime,
    action: Mapping[str, Any] | None = None,
    partner_service_refs: Collection[str] = (),
) -> Verdict | None:
    """What one Consent says about this disclosure on its own: "deny" (it blocks), "permit" (it would
    unlock an opt-in disclosure), or None (neither)."""
    request = _request(patient_ref, partner_org_ref, partner_service_refs, now, action)
    if _in_force(consent, request) and _blocks(consent, request):
        return "deny"
    return "permit" if _unlock_problem(consent, request) is None else None


def unlock_problem(
    consent: dict[str, Any],
    *,
    patient_ref: str,
    partner_org_ref: str,
    now: datetime,
    partner_service_refs: Collection[str] = (),
) -> str | None:
    """Why this Consent does not unlock a disclosure to the partner (the first rule it breaks), or None."""
    request = _request(patient_ref, partner_org_ref, partner_service_refs, now, None)
    problem = _unlock_problem(consent, request)
    return problem[1] if problem else None


def evidence_warning(consent: Mapping[str, Any]) -> str | None:
    """UK GDPR Art. 7(1): the controller must be able to demonstrate consent. No source[x]: a warning."""
    if consent.get("sourceAttachment") or consent.get("sourceReference"):
        return None
    return (
        f"{_name(consent)} records no evidence of the consent (sourceAttachment or sourceReference): the "
        "referring clinic must be able to show how and when it was given (UK GDPR Art. 7(1))"
    )


def is_disclosure_scope(consent: Mapping[str, Any]) -> bool:
    scope = consent.get("scope")
    found = codings(scope) if isinstance(scope, dict) else iter(())
    return any(c.get("system") == CONSENT_SCOPE and c.get("code") == "patient-privacy" for c in found)


def inferred_root_type(consent: Mapping[str, Any]) -> Verdict | None:
    """permit for a v3 ActCode OPTIN policyRule, deny for OPTOUT, else None (nothing inferred)."""
    rule = consent.get("policyRule")
    found = codings(rule) if isinstance(rule, dict) else iter(())
    codes = {c.get("code") for c in found if c.get("system") in V3_ACT_CODE}
    if codes == {"OPTIN"}:
        return "permit"
    if codes == {"OPTOUT"}:
        return "deny"
    return None


def _request(
    patient_ref: str,
    partner_org_ref: str,
    partner_service_refs: Collection[str],
    now: datetime,
    action: Mapping[str, Any] | None,
) -> Request:
    partners = frozenset(normalise_reference(r) for r in (partner_org_ref, *partner_service_refs))
    label = normalise_reference(partner_org_ref) + (
        " (or its HealthcareService)" if partner_service_refs else ""
    )
    moment = now if now.tzinfo else now.replace(tzinfo=UTC)
    return Request(normalise_reference(patient_ref), partners, label, moment, action)


def _in_force(consent: Mapping[str, Any], request: Request) -> bool:
    """Active and about this Patient: only such Consents say anything (R4 Consent.status, Consent.patient)."""
    return consent.get("status") == "active" and _patient_matches(consent, request)


def _patient_matches(consent: Mapping[str, Any], request: Request) -> bool:
    patient = consent.get("patient")
    reference = patient.get("reference") if isinstance(patient, dict) else None
    return isinstance(reference, str) and normalise_reference(reference) == request.patient


def _root(consent: Mapping[str, Any]) -> dict[str, Any] | None:
    """The root provision with its type stated or inferred from policyRule; None when neither."""
    root = consent.get("provision")
    root = root if isinstance(root, dict) else {}
    if root.get("type") is None:
        inferred = inferred_root_type(consent)
        return None if inferred is None else {**root, "type": inferred}
    return root


def _blocks(consent: Mapping[str, Any], request: Request) -> bool:
    root = _root(consent)
    if root is None:
        return False
    return DENY in provision_outcomes(root, request, named_above=False) or explicit_deny(root, request)


def _unlock_problem(consent: Mapping[str, Any], request: Request) -> tuple[int, str] | None:
    name = _name(consent)
    status = consent.get("status")
    if status != "active":
        return _STATUS, f"{name} has status {status!r}: only an active Consent can permit a disclosure"
    if not _patient_matches(consent, request):
        return _PATIENT, f"{name} is about another patient"
    if not is_disclosure_scope(consent):
        scope = _scope_code(consent)
        return _SCOPE, f"{name} has scope {scope}: only a patient-privacy Consent can permit a disclosure"
    if not consent.get("dateTime"):
        return _DATED, f"{name} has no dateTime: a disclosure consent must record when it was given"
    root = consent.get("provision")
    if not isinstance(root, dict) or root.get("type") is None:
        return _TYPED, f"{name} has no provision.type: only a stated permit can permit a disclosure"
    period = root.get("period")
    if isinstance(period, dict) and period_covers(period, request.now) is not True:
        return _PERIOD, f"{name} is not in force now: its provision.period does not cover this moment"
    outcomes = provision_outcomes(root, request, named_above=False)
    if outcomes == {PERMIT_NAMED}:
        return None
    if PERMIT_NAMED in outcomes:
        reason = "permits only part of the record, or only for an action the hub cannot establish"
    elif roles := other_roles(root, request):
        reason = (
            f"names {request.label} as {', '.join(sorted(roles))}, not in a recipient role "
            "(v3 ParticipationType IRCP, PRCP or REFT)"
        )
    elif PERMIT_ANYONE in outcomes:
        reason = f"permits without naming {request.label}: an opt-in service needs the partner named"
    else:
        reason = f"does not permit disclosure to {request.label}"
    return _PROVISION, f"{name} {reason}"


def _deny_rule(consent: Mapping[str, Any], request: Request) -> str:
    rule = f"{_name(consent)} denies disclosure to {request.label}"
    if not is_disclosure_scope(consent):
        # A deny counts whatever its scope; only provision.purpose narrows it (ADR 0009).
        rule += f" (scope {_scope_code(consent)}: a deny limited to research says so in provision.purpose)"
    return rule


def _scope_code(consent: Mapping[str, Any]) -> str:
    scope = consent.get("scope")
    codes = [str(c.get("code")) for c in codings(scope) if c.get("code")] if isinstance(scope, dict) else []
    return codes[0] if codes else "(uncoded)"


def _id(consent: Mapping[str, Any] | None) -> str | None:
    value = consent.get("id") if consent is not None else None
    return value if isinstance(value, str) else None


def _name(consent: Mapping[str, Any]) -> str:
    cid = _id(consent)
    return f"Consent/{cid}" if cid else "the Consent"
