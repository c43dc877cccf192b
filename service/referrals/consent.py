"""Consent for a referral: does the patient's Consent let the hub disclose this referral to this partner?

Implements R4 Consent provisions (http://hl7.org/fhir/R4/consent.html#provision): a root provision with a
`type` (permit | deny), optionally narrowed by period, actor, purpose, action and data, and nested
provisions that are exceptions to their parent. The most specific matching provision decides.

Choices made here (a referral carries HIV-related data, so the hub fails closed):

- Only `status == "active"` Consents count; the patient must match and the root period must cover `now`.
- A provision applies when *all* its conditions hold. Conditions the hub cannot establish make it apply
  "maybe": a purpose or action restriction when the caller gave no purpose/action, and any data
  restriction (`securityLabel`, `class`, `code`, `dataPeriod`, `data`), because the hub sends the whole
  referral and cannot redact part of it. A *maybe* deny denies; a *maybe* permit does not permit.
- An actor names the partner when `actor.reference.reference` is the partner (or one of its services)
  and its `role`, if given, is a recipient role: v3 ParticipationType IRCP (information recipient), PRCP
  (primary information recipient) or REFT (referred to: the party a patient is referred to). Other roles
  (e.g. CST custodian, AUT author) are not a disclosure to that party. A provision with no actors applies
  to everyone; one whose actors all fail to match does not apply.
- Sibling provisions that both match: deny wins. Across Consents: any applicable deny wins.
- A root provision without `type` (4 of the 5 R4 Consent examples) is accepted with a warning; its type is
  inferred from `policyRule` (v3 ActCode OPTIN -> permit, OPTOUT -> deny, the only two codes that say
  so plainly); with any other policyRule the Consent decides nothing. A missing provision is read as an
  empty root provision the same way (an OPTOUT Consent with no provision denies everyone).
- Opt-in services need a permit that *names* the partner (in the deciding provision or an ancestor);
  a blanket permit with no actors is not enough. Opt-out services are allowed unless something denies.
- Period bounds use their precision (R4 Period: "the end value includes any matching date/time"), so a
  date-only end covers that whole day. Dates, and times without a zone, are read in Europe/London, the
  hub's jurisdiction (UTC if the host has no time-zone data); a naive `now` is taken as UTC.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from service.errors import Issue
from service.referrals._period import period_covers, period_problem

Verdict = Literal["permit", "deny"]

V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_V3_PARTICIPATION_SYSTEMS = frozenset({V3_PARTICIPATION_TYPE, "http://hl7.org/fhir/v3/ParticipationType"})
_V3_ACT_CODE = frozenset(
    {"http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://hl7.org/fhir/v3/ActCode"}
)
RECIPIENT_ROLE_CODES = frozenset({"IRCP", "PRCP", "REFT"})
CONSENT_STATUSES = frozenset({"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"})
_DATA_RESTRICTIONS = ("securityLabel", "class", "code", "dataPeriod", "data")

# Outcomes of evaluating one provision subtree. Blanket permits (no actor named the partner on the path)
# are kept apart so that opt-in can insist on a named permit.
_DENY = "deny"
_PERMIT_NAMED = "permit-named"
_PERMIT_ANYONE = "permit-anyone"
_Outcome = str | None  # one of the three above, or None: the subtree does not apply


@dataclass(frozen=True)
class ConsentDecision:
    allowed: bool
    # Short reason, safe for logs and partners: never clinical detail.
    rule: str
    consent_id: str | None


@dataclass(frozen=True)
class _Request:
    partners: frozenset[str]
    now: datetime
    purpose: Mapping[str, Any] | None
    action: Mapping[str, Any] | None


def evaluate_referral_consent(
    consents: list[dict[str, Any]],
    *,
    patient_ref: str,
    partner_org_ref: str,
    model: Literal["opt-in", "opt-out"],
    now: datetime,
    purpose: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
    partner_service_refs: Collection[str] = (),
) -> ConsentDecision:
    """Decide whether a referral for ``patient_ref`` may go to ``partner_org_ref`` under ``model``.

    ``purpose`` is a Coding; ``action`` a Coding or CodeableConcept. ``partner_service_refs`` lists the
    partner's HealthcareServices, which a Consent actor may name instead of the Organization.
    """
    request = _request(partner_org_ref, partner_service_refs, now, purpose, action)
    named_permits: list[dict[str, Any]] = []
    permits: list[dict[str, Any]] = []
    for consent in consents:
        outcomes = _consent_outcomes(consent, patient_ref, request)
        if _DENY in outcomes:
            return ConsentDecision(False, "an active Consent denies disclosure to this partner", _id(consent))
        if outcomes == {_PERMIT_NAMED}:
            named_permits.append(consent)
        if outcomes <= {_PERMIT_NAMED, _PERMIT_ANYONE}:
            permits.append(consent)
    if model == "opt-in":
        if named_permits:
            return ConsentDecision(
                True, "opt-in service: an active permit Consent names the partner", _id(named_permits[0])
            )
        return ConsentDecision(
            False, "opt-in service requires an active permit Consent naming the partner", None
        )
    return ConsentDecision(
        True, "opt-out service: no active Consent denies this partner", _id(permits[0]) if permits else None
    )


def consent_permits(
    consent: dict[str, Any],
    *,
    patient_ref: str,
    partner_org_ref: str,
    now: datetime,
    purpose: Mapping[str, Any] | None = None,
    action: Mapping[str, Any] | None = None,
    partner_service_refs: Collection[str] = (),
) -> Verdict | None:
    """What one Consent says about this disclosure: "permit", "deny", or None when it does not apply.

    "deny" also when it *might* deny (see the module notes); "permit" only when it certainly permits,
    whether or not it names the partner.
    """
    request = _request(partner_org_ref, partner_service_refs, now, purpose, action)
    outcomes = _consent_outcomes(consent, patient_ref, request)
    if _DENY in outcomes:
        return "deny"
    if outcomes <= {_PERMIT_NAMED, _PERMIT_ANYONE}:
        return "permit"
    return None


def consent_issues(consent: dict[str, Any]) -> list[Issue]:
    """Structural problems with a Consent submitted to the hub (beyond what the R4 model checks).

    Hub rules stricter than R4: `patient` is required (R4's ppc-2..5 invariants compare the scope system
    with the placeholder 'something', so they never fire); every actor needs a literal reference; nested
    provisions need `type`. A root provision without `type` is only a warning: R4's own examples omit it
    (all but consent-example-notOrg), and evaluation infers it from `policyRule` (see the module notes).
    """
    issues: list[Issue] = []
    status = consent.get("status")
    if not status:
        issues.append(_issue("required", "Consent.status is required", "Consent.status"))
    elif status not in CONSENT_STATUSES:
        issues.append(
            _issue("code-invalid", f"Consent.status {status!r} is not an R4 code", "Consent.status")
        )
    if not _non_empty_dict(consent.get("scope")):
        issues.append(_issue("required", "Consent.scope is required", "Consent.scope"))
    categories = consent.get("category")
    if not isinstance(categories, list) or not any(_non_empty_dict(c) for c in categories):
        issues.append(_issue("required", "Consent.category needs at least one entry", "Consent.category"))
    issues.extend(_patient_issues(consent.get("patient")))
    if not consent.get("policy") and not consent.get("policyRule"):
        issues.append(_issue("invariant", "ppc-1: a Consent needs a policy or a policyRule", "Consent"))
    root = consent.get("provision")
    if not isinstance(root, dict) or root.get("type") is None:
        inferred = inferred_root_type(consent)
        issues.append(
            Issue(
                code="required",
                severity="warning",
                diagnostics=(
                    "Consent.provision.type is missing: the hub reads it as "
                    + (f"{inferred!r} from policyRule" if inferred else "not applicable to referrals")
                ),
                expression=("Consent.provision.type",),
            )
        )
    if isinstance(root, dict):
        issues.extend(_provision_issues(root, "Consent.provision", root=True))
    return issues


def inferred_root_type(consent: Mapping[str, Any]) -> Verdict | None:
    """permit for a v3 ActCode OPTIN policyRule, deny for OPTOUT, else None (nothing inferred)."""
    rule = consent.get("policyRule")
    codings = _codings(rule) if isinstance(rule, dict) else iter(())
    codes = {c.get("code") for c in codings if c.get("system") in _V3_ACT_CODE}
    if codes == {"OPTIN"}:
        return "permit"
    if codes == {"OPTOUT"}:
        return "deny"
    return None


def normalise_reference(reference: str) -> str:
    """'https://hub/fhir/Patient/1/_history/2' and 'Patient/1' both become 'Patient/1'."""
    ref = reference.strip().split("/_history/", 1)[0].rstrip("/")
    if ref.startswith(("urn:", "#")):
        return ref
    parts = ref.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def _request(
    partner_org_ref: str,
    partner_service_refs: Collection[str],
    now: datetime,
    purpose: Mapping[str, Any] | None,
    action: Mapping[str, Any] | None,
) -> _Request:
    partners = frozenset(normalise_reference(r) for r in (partner_org_ref, *partner_service_refs))
    return _Request(partners, now if now.tzinfo else now.replace(tzinfo=UTC), purpose, action)


def _consent_outcomes(consent: dict[str, Any], patient_ref: str, request: _Request) -> set[_Outcome]:
    """Every outcome the Consent could give (several when a condition is unknown); {None}: not applicable."""
    if consent.get("status") != "active":
        return {None}
    patient = consent.get("patient")
    reference = patient.get("reference") if isinstance(patient, dict) else None
    if not isinstance(reference, str) or normalise_reference(reference) != normalise_reference(patient_ref):
        return {None}
    root = consent.get("provision")
    if not isinstance(root, dict):
        root = {}
    if root.get("type") is None:
        inferred = inferred_root_type(consent)
        if inferred is None:
            return {None}
        root = {**root, "type": inferred}
    return _provision_outcomes(root, request, named_above=False)


def _provision_outcomes(provision: dict[str, Any], request: _Request, *, named_above: bool) -> set[_Outcome]:
    applies, names_partner = _applies(provision, request)
    if applies is False:
        return {None}
    named = named_above or names_partner
    inner = _children_outcomes(provision, request, named=named)
    own = provision.get("type")
    own_outcome: _Outcome = None
    if own == "deny":
        own_outcome = _DENY
    elif own == "permit":
        own_outcome = _PERMIT_NAMED if named else _PERMIT_ANYONE
    # An applicable nested provision overrides its parent; otherwise the parent's own type stands.
    outcomes = {own_outcome if o is None else o for o in inner}
    if applies is None:  # maybe applies: it may equally not apply at all
        outcomes.add(None)
    return outcomes


def _children_outcomes(provision: dict[str, Any], request: _Request, *, named: bool) -> set[_Outcome]:
    children = [c for c in provision.get("provision") or [] if isinstance(c, dict)]
    combined: set[_Outcome] = {None}
    for child in children:
        child_outcomes = _provision_outcomes(child, request, named_above=named)
        combined = {_stronger(a, b) for a in combined for b in child_outcomes}
    return combined


def _stronger(a: _Outcome, b: _Outcome) -> _Outcome:
    order = {None: 0, _PERMIT_ANYONE: 1, _PERMIT_NAMED: 2, _DENY: 3}
    return a if order[a] >= order[b] else b


def _applies(provision: dict[str, Any], request: _Request) -> tuple[bool | None, bool]:
    """(True/False/None for applies/does not/maybe, whether an actor named the partner)."""
    verdicts: list[bool | None] = []
    period = provision.get("period")
    if isinstance(period, dict):
        verdicts.append(period_covers(period, request.now))
    actors = [a for a in provision.get("actor") or [] if isinstance(a, dict)]
    names_partner = any(_actor_names(actor, request.partners) for actor in actors)
    if actors:
        verdicts.append(names_partner)
    purposes = [p for p in provision.get("purpose") or [] if isinstance(p, dict)]
    if purposes:
        verdicts.append(None if request.purpose is None else _any_coding_matches(purposes, request.purpose))
    actions = [c for a in provision.get("action") or [] if isinstance(a, dict) for c in _codings(a)]
    if actions:
        verdicts.append(None if request.action is None else _any_coding_matches(actions, request.action))
    if any(provision.get(element) for element in _DATA_RESTRICTIONS):
        verdicts.append(None)
    if False in verdicts:
        return False, names_partner
    return (None if None in verdicts else True), names_partner


def _actor_names(actor: dict[str, Any], partners: frozenset[str]) -> bool:
    reference = actor.get("reference")
    literal = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(literal, str) or normalise_reference(literal) not in partners:
        return False
    role = actor.get("role")
    if not isinstance(role, dict) or not role.get("coding"):
        return True  # R4 makes role 1..1, but a missing role does not narrow who the actor is
    return any(
        c.get("system") in _V3_PARTICIPATION_SYSTEMS and c.get("code") in RECIPIENT_ROLE_CODES
        for c in _codings(role)
    )


def _codings(concept: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The codings of a CodeableConcept, or the value itself when it is a bare Coding."""
    if "coding" in concept:
        yield from (c for c in concept.get("coding") or [] if isinstance(c, dict))
    else:
        yield concept


def _any_coding_matches(restriction: Sequence[Mapping[str, Any]], wanted: Mapping[str, Any]) -> bool:
    wanted_codes = {(c.get("system"), c.get("code")) for c in _codings(wanted) if c.get("code")}
    return any((c.get("system"), c.get("code")) in wanted_codes for c in restriction)


def _id(consent: dict[str, Any]) -> str | None:
    value = consent.get("id")
    return value if isinstance(value, str) else None


def _non_empty_dict(value: object) -> bool:
    return isinstance(value, dict) and bool(value)


def _issue(code: str, message: str, expression: str) -> Issue:
    return Issue(code=code, diagnostics=message, expression=(expression,))


def _patient_issues(patient: object) -> list[Issue]:
    reference = patient.get("reference") if isinstance(patient, dict) else None
    if not isinstance(reference, str) or not reference.strip():
        return [
            _issue(
                "required",
                "Consent.patient must reference the Patient the consent is about",
                "Consent.patient",
            )
        ]
    if not reference.startswith(("urn:uuid:", "#")) and not normalise_reference(reference).startswith(
        "Patient/"
    ):
        return [_issue("value", "Consent.patient must reference a Patient", "Consent.patient.reference")]
    return []


def _provision_issues(provision: dict[str, Any], path: str, *, root: bool = False) -> list[Issue]:
    issues: list[Issue] = []
    kind = provision.get("type")
    if kind is None and root:
        pass  # a warning from consent_issues: the root type is inferred from policyRule
    elif kind is None:
        issues.append(_issue("required", f"{path}.type (permit or deny) is required", f"{path}.type"))
    elif kind not in ("permit", "deny"):
        issues.append(_issue("code-invalid", f"{path}.type must be permit or deny", f"{path}.type"))
    period = provision.get("period")
    if period is not None:
        problem = period_problem(period)
        if problem:
            issues.append(_issue("value", f"{path}.period: {problem}", f"{path}.period"))
    for index, actor in enumerate(provision.get("actor") or []):
        where = f"{path}.actor[{index}]"
        if not isinstance(actor, dict) or not _non_empty_dict(actor.get("role")):
            issues.append(_issue("required", f"{where}.role is required", f"{where}.role"))
        reference = actor.get("reference") if isinstance(actor, dict) else None
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            issues.append(
                _issue(
                    "required",
                    f"{where}.reference needs a literal reference (e.g. "
                    "'Organization/id') so the hub can match it",
                    f"{where}.reference",
                )
            )
    for index, child in enumerate(provision.get("provision") or []):
        if isinstance(child, dict):
            issues.extend(_provision_issues(child, f"{path}.provision[{index}]"))
    return issues
