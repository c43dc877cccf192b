import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from service.referrals.consent import (
    ConsentDecision,
    Decline,
    consent_verdict,
    evaluate_referral_consent,
    normalise_reference,
    unlock_problem,
)
from service.referrals.consent_form import consent_issues

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fhir-r4-core"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # January: London time is UTC, so day boundaries agree
PATIENT = "Patient/p1"
PARTNER = "Organization/partner-a"
OTHER = "Organization/partner-b"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TREAT = {"system": ACT_REASON, "code": "TREAT"}
HRESCH = {"system": ACT_REASON, "code": "HRESCH"}
HMARKT = {"system": ACT_REASON, "code": "HMARKT"}
DISCLOSE = {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACCESS = {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def actor(ref: str, code: str | None = "IRCP", system: str = V3) -> dict[str, Any]:
    out: dict[str, Any] = {"reference": {"reference": ref}}
    if code is not None:
        out["role"] = {"coding": [{"system": system, "code": code}]}
    return out


def provision(
    kind: str | None = "permit", *, actors: tuple[str, ...] = (PARTNER,), **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind is not None:
        out["type"] = kind
    if actors:
        out["actor"] = [actor(a) for a in actors]
    out.update(extra)
    return out


def consent(root: dict[str, Any] | None = None, *, cid: str = "c1", **extra: Any) -> dict[str, Any]:
    """A complete disclosure consent (each test takes away or changes one thing)."""
    out: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {"coding": [{"system": SCOPE, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": PATIENT},
        "dateTime": "2025-01-10T09:00:00Z",
        "sourceAttachment": {"title": "signed form"},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": provision() if root is None else root,
    }
    out.update(extra)
    return out


def scoped(code: str, root: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return consent(root, scope={"coding": [{"system": SCOPE, "code": code}]}, **extra)


def decide(
    consents: list[dict[str, Any]],
    model: Literal["opt-in", "opt-out"] = "opt-in",
    *,
    partner: str = PARTNER,
    **kwargs: Any,
) -> ConsentDecision:
    return evaluate_referral_consent(
        consents,
        patient_ref=PATIENT,
        partner_org_ref=partner,
        model=model,
        now=kwargs.pop("now", NOW),
        **kwargs,
    )


def verdict(c: dict[str, Any], *, partner: str = PARTNER, now: datetime = NOW, **kwargs: Any) -> str | None:
    return consent_verdict(c, patient_ref=PATIENT, partner_org_ref=partner, now=now, **kwargs)


def problem(c: dict[str, Any], **kwargs: Any) -> str | None:
    return unlock_problem(c, patient_ref=PATIENT, partner_org_ref=PARTNER, now=NOW, **kwargs)


# --- opt-in / opt-out basics ---------------------------------------------------------------------------


def test_permit_for_the_partner_allows_opt_in() -> None:
    decision = decide([consent()])
    assert decision.allowed
    assert decision.consent_id == "c1"
    assert decision.rests_on_consent
    assert decision.warnings == ()


def test_permit_for_another_partner_does_not_allow_opt_in() -> None:
    decision = decide([consent(provision(actors=(OTHER,)))])
    assert decision == ConsentDecision(
        allowed=False, rule="Consent/c1 does not permit disclosure to Organization/partner-a", consent_id="c1"
    )


def test_no_consent_refuses_opt_in_and_allows_opt_out() -> None:
    refused = decide([])
    assert not refused.allowed
    assert refused.rule.startswith("opt-in service requires an active permit Consent naming the partner")
    assert decide([], "opt-out") == ConsentDecision(
        True, "opt-out service: no active Consent denies this partner", None
    )


def test_deny_for_the_partner_refuses_opt_out() -> None:
    decision = decide([consent(provision("deny"), cid="d1")], "opt-out")
    assert decision == ConsentDecision(False, "Consent/d1 denies disclosure to Organization/partner-a", "d1")


def test_deny_for_another_partner_does_not_affect_this_one() -> None:
    deny_other = consent(provision("deny", actors=(OTHER,)), cid="d1")
    assert decide([deny_other], "opt-out").allowed
    assert decide([deny_other, consent(cid="p1")]).consent_id == "p1"
    assert decide([deny_other, consent(cid="p1")]).allowed


def test_opt_out_reports_an_applicable_permit_but_does_not_rest_on_it() -> None:
    decision = decide([consent(cid="p1")], "opt-out")
    assert decision.consent_id == "p1"
    assert not decision.rests_on_consent


def test_the_deciding_permit_is_reported_among_several() -> None:
    assert (
        decide([consent(provision(actors=(OTHER,)), cid="other"), consent(cid="mine")]).consent_id == "mine"
    )


@pytest.mark.parametrize("status", ["draft", "proposed", "rejected", "inactive", "entered-in-error", None])
def test_only_active_consents_apply(status: str | None) -> None:
    permit = consent(status=status)
    deny = consent(provision("deny"), status=status)
    assert verdict(permit) is None
    assert not decide([permit]).allowed
    assert decide([deny], "opt-out").allowed
    assert (
        problem(permit) == f"Consent/c1 has status {status!r}: only an active Consent can permit a disclosure"
    )


def test_wrong_patient_does_not_apply() -> None:
    other_patient = consent(patient={"reference": "Patient/p2"})
    assert verdict(other_patient) is None
    assert problem(other_patient) == "Consent/c1 is about another patient"
    assert not decide([other_patient]).allowed
    assert decide([consent(provision("deny"), patient={"reference": "Patient/p2"})], "opt-out").allowed


def test_missing_patient_does_not_apply() -> None:
    no_patient = consent()
    del no_patient["patient"]
    assert verdict(no_patient) is None


def test_references_are_compared_normalised() -> None:
    absolute = consent(
        provision(actors=("https://hub.example.org/fhir/Organization/partner-a/_history/3",)),
        patient={"reference": "https://hub.example.org/fhir/Patient/p1"},
    )
    assert verdict(absolute) == "permit"
    assert normalise_reference("https://h/fhir/Patient/1/_history/2") == "Patient/1"
    assert normalise_reference("urn:uuid:0b5b8a9e-4f0b-4c64-9f5a-2c1f5e0d9a11").startswith("urn:uuid:")


# --- what makes a disclosure consent: each rule alone ----------------------------------------------------


@pytest.mark.parametrize("scope", ["treatment", "research", "adr"])
def test_other_scopes_never_unlock(scope: str) -> None:
    c = scoped(scope)
    assert verdict(c) is None
    decision = decide([c])
    assert not decision.allowed
    assert decision.rule == (
        f"Consent/c1 has scope {scope}: only a patient-privacy Consent can permit a disclosure"
    )


def test_patient_privacy_from_another_system_does_not_unlock() -> None:
    c = consent(scope={"coding": [{"system": "https://example.org/scopes", "code": "patient-privacy"}]})
    assert verdict(c) is None
    assert verdict(consent(scope={"text": "patient privacy"})) is None


def test_a_permit_needs_a_date_time() -> None:
    undated = consent()
    del undated["dateTime"]
    assert verdict(undated) is None
    assert problem(undated) == (
        "Consent/c1 has no dateTime: a disclosure consent must record when it was given"
    )


def test_a_permit_needs_a_stated_root_type() -> None:
    inferred = consent(provision(None))  # OPTIN policyRule: read as permit, but never unlocks
    assert verdict(inferred) is None
    assert (
        problem(inferred) == "Consent/c1 has no provision.type: only a stated permit can permit a disclosure"
    )


def test_a_permit_needs_its_period_to_cover_now() -> None:
    expired = consent(provision(period={"end": "2024-12-31"}))
    assert problem(expired) == (
        "Consent/c1 is not in force now: its provision.period does not cover this moment"
    )


@pytest.mark.parametrize("code", ["CST", "AUT", "IRCP-ish"])
def test_a_permit_needs_a_recipient_role(code: str) -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, code)]})
    assert verdict(c) is None
    assert problem(c) == (
        f"Consent/c1 names Organization/partner-a as {code}, not in a recipient role "
        "(v3 ParticipationType IRCP, PRCP or REFT)"
    )


def test_a_permit_actor_without_role_is_not_a_recipient() -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, code=None)]})
    assert not decide([c]).allowed
    assert "as no role" in (problem(c) or "")


@pytest.mark.parametrize("code", ["IRCP", "PRCP", "REFT"])
def test_recipient_roles_apply(code: str) -> None:
    assert decide([consent({"type": "permit", "actor": [actor(PARTNER, code)]})]).allowed


def test_recipient_role_in_the_old_v3_system_applies() -> None:
    c = consent(
        {"type": "permit", "actor": [actor(PARTNER, "IRCP", "http://hl7.org/fhir/v3/ParticipationType")]}
    )
    assert verdict(c) == "permit"


def test_recipient_code_from_another_system_does_not_apply() -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, "IRCP", "https://example.org/roles")]})
    assert verdict(c) is None


def test_the_refusal_names_the_consent_that_got_furthest() -> None:
    research = scoped("research", cid="r1")
    undated = consent(cid="u1")
    del undated["dateTime"]
    other_partner = consent(provision(actors=(OTHER,)), cid="o1")
    decision = decide([research, undated, other_partner])
    assert decision.consent_id == "o1"
    assert decision.rule == "Consent/o1 does not permit disclosure to Organization/partner-a"
    assert decide([research, undated]).rule.startswith("Consent/u1 has no dateTime")
    assert decide([research]).rule.startswith("Consent/r1 has scope research")


def test_a_permit_without_evidence_unlocks_with_a_warning() -> None:
    bare = consent()
    del bare["sourceAttachment"]
    decision = decide([bare])
    assert decision.allowed
    assert len(decision.warnings) == 1
    assert "no evidence" in decision.warnings[0]
    assert "Art. 7(1)" in decision.warnings[0]
    by_reference = {**bare, "sourceReference": {"reference": "DocumentReference/form"}}
    assert decide([by_reference]).warnings == ()


# --- periods -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ({"end": "2024-12-31"}, None),  # expired
        ({"start": "2025-02-01"}, None),  # not yet in force
        ({"start": "2025-01-15"}, "permit"),  # starts today
        ({"end": "2025-01-15"}, "permit"),  # a date-only end covers the whole day
        ({"start": "2024", "end": "2025-01"}, "permit"),  # partial dates cover their whole year/month
        ({"end": "2024-12"}, None),
        ({"start": "2025-01-15T13:00:00+01:00"}, "permit"),  # 12:00Z, inclusive
        ({"start": "2025-01-15T12:00:01Z"}, None),
        ({"end": "2025-01-15T12:59:59+01:00"}, None),  # 11:59:59Z
        ({"end": "2025-01-15T12:00:00Z"}, "permit"),  # the end instant is included
        ({"start": "2020-01-01T00:00:00.000Z", "end": "2030-01-01T00:00:00.000Z"}, "permit"),
    ],
)
def test_root_period_must_cover_now(period: dict[str, str], expected: str | None) -> None:
    assert verdict(consent(provision(period=period))) == expected


def test_date_only_end_ends_at_midnight() -> None:
    c = consent(provision(period={"end": "2025-01-15"}))
    assert verdict(c, now=datetime(2025, 1, 15, 23, 59, 59, tzinfo=UTC)) == "permit"
    assert verdict(c, now=datetime(2025, 1, 16, 0, 0, tzinfo=UTC)) is None


def test_date_only_bounds_are_london_days_in_summer() -> None:
    # 23:30Z on 30 June is 00:30 BST on 1 July: after a consent that ended on 30 June.
    c = consent(provision(period={"end": "2025-06-30"}))
    assert verdict(c, now=datetime(2025, 6, 30, 22, 30, tzinfo=UTC)) == "permit"
    assert verdict(c, now=datetime(2025, 6, 30, 23, 30, tzinfo=UTC)) is None


def test_naive_now_is_taken_as_utc() -> None:
    # In summer, 12:30 naive read as London time would be 11:30Z, before the period starts.
    c = consent(provision(period={"start": "2025-07-15T12:00:00Z"}))
    assert verdict(c, now=datetime(2025, 7, 15, 12, 30)) == "permit"
    assert verdict(c, now=datetime(2025, 7, 15, 11, 30)) is None


def test_unreadable_period_does_not_permit_but_still_denies() -> None:
    assert verdict(consent(provision(period={"start": "last Tuesday"}))) is None
    assert verdict(consent(provision("deny", period={"start": "last Tuesday"}))) == "deny"


def test_expired_deny_no_longer_applies() -> None:
    expired = consent(provision("deny", period={"end": "2024-12-31"}))
    assert decide([expired], "opt-out").allowed


# --- denies fail closed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "role",
    [
        {"coding": [{"system": V3, "code": "CST"}]},  # custodian
        {"coding": [{"system": V3, "code": "AUT"}]},  # author
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass", "code": "PROV"}]},
        {"coding": [{"system": "http://snomed.info/sct", "code": "224608005"}]},
        {"text": "peer worker"},
        None,
    ],
)
def test_a_deny_naming_the_partner_blocks_whatever_the_role(role: dict[str, Any] | None) -> None:
    # Was: a deny with a non-recipient role was ignored (the gate failed open).
    named: dict[str, Any] = {"reference": {"reference": PARTNER}}
    if role is not None:
        named["role"] = role
    deny = consent({"type": "deny", "actor": [named]}, cid="d1")
    assert verdict(deny) == "deny"
    assert not decide([deny], "opt-out").allowed
    assert not decide([deny, consent(cid="p1")]).allowed
    assert decide([deny], "opt-out", partner=OTHER).allowed


def test_a_deny_naming_the_partners_service_blocks() -> None:
    deny = consent(provision("deny", actors=("HealthcareService/hs1",)))
    assert not decide([deny], "opt-out", partner_service_refs=["HealthcareService/hs1"]).allowed
    assert decide([deny], "opt-out", partner_service_refs=["HealthcareService/hs2"]).allowed


def test_blanket_deny_refuses_everyone() -> None:
    blanket = consent(provision("deny", actors=()))
    assert not decide([blanket], "opt-out").allowed
    assert not decide([blanket], "opt-out", partner=OTHER).allowed


@pytest.mark.parametrize("scope", ["patient-privacy", "treatment", "research", "adr"])
def test_a_deny_blocks_whatever_its_scope_or_date(scope: str) -> None:
    deny = scoped(scope, provision("deny"), cid="d1")
    del deny["dateTime"]
    decision = decide([deny], "opt-out")
    assert not decision.allowed
    if scope != "patient-privacy":
        assert "provision.purpose" in decision.rule  # how to say "research only"


def test_an_inferred_deny_blocks() -> None:
    optout = consent(provision(None), policyRule={"coding": [{"system": V3_ACT, "code": "OPTOUT"}]})
    assert verdict(optout) == "deny"


def test_a_deny_naming_the_partner_blocks_even_under_a_permit_for_someone_else() -> None:
    c = consent(provision("permit", actors=(OTHER,), provision=[provision("deny", actors=(PARTNER,))]))
    assert verdict(c) == "deny"
    assert verdict(c, partner=OTHER) == "permit"


def test_a_blanket_exception_under_a_permit_for_someone_else_does_not_reach_the_partner() -> None:
    c = consent(provision("permit", actors=(OTHER,), provision=[provision("deny", actors=())]))
    assert verdict(c) is None
    assert decide([c], "opt-out").allowed


def test_a_named_deny_under_a_permit_naming_the_partner_as_custodian_blocks() -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, "CST")], "provision": [provision("deny")]})
    assert verdict(c) == "deny"


# --- deny over permit ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["opt-in", "opt-out"])
def test_a_deny_wins_over_a_permit_whatever_the_order(model: Literal["opt-in", "opt-out"]) -> None:
    permit, deny = consent(cid="p1"), consent(provision("deny"), cid="d1")
    for consents in ([permit, deny], [deny, permit]):
        assert decide(consents, model) == ConsentDecision(
            False, "Consent/d1 denies disclosure to Organization/partner-a", "d1"
        )


@pytest.mark.parametrize(
    "deny",
    [
        pytest.param(consent({"type": "deny", "actor": [actor(PARTNER, "CST")]}, cid="d1"), id="custodian"),
        pytest.param(consent(provision("deny", actors=()), cid="d1"), id="blanket"),
        pytest.param(scoped("research", provision("deny"), cid="d1"), id="research-scope"),
        pytest.param(consent(provision("deny", purpose=[TREAT]), cid="d1"), id="for-care"),
        pytest.param(consent(provision("deny", purpose=[HRESCH, TREAT]), cid="d1"), id="research-and-care"),
        pytest.param(
            consent(provision("deny", securityLabel=[{"code": "HIV"}]), cid="d1"), id="part-of-record"
        ),
        pytest.param(
            consent(provision("deny", actors=("HealthcareService/hs1",)), cid="d1"), id="the-service"
        ),
    ],
)
def test_each_kind_of_deny_wins_over_a_good_permit(deny: dict[str, Any]) -> None:
    decision = decide([consent(cid="p1"), deny], partner_service_refs=["HealthcareService/hs1"])
    assert not decision.allowed
    assert decision.consent_id == "d1"


def test_a_permit_with_a_nested_deny_for_the_partner() -> None:
    c = consent(provision(actors=(PARTNER, OTHER), provision=[provision("deny", actors=(PARTNER,))]))
    assert verdict(c) == "deny"
    assert not decide([c]).allowed
    assert decide([c], partner=OTHER).allowed  # the exception names only partner A


def test_deny_with_nested_permit_for_the_partner() -> None:
    # R4 nested provisions are exceptions: "deny everyone but partner A" lets partner A in.
    c = consent(provision("deny", actors=(), provision=[provision("permit", actors=(PARTNER,))]))
    assert verdict(c) == "permit"
    assert decide([c]).allowed
    assert not decide([c], "opt-out", partner=OTHER).allowed


# --- nested provisions ---------------------------------------------------------------------------------


def test_nested_permit_inherits_the_parents_naming_of_the_partner() -> None:
    c = consent(provision("permit", provision=[provision("permit", actors=(), purpose=[TREAT])]))
    assert decide([c]).allowed


def test_nested_exception_outside_its_period_does_not_apply() -> None:
    c = consent(provision(provision=[provision("deny", period={"end": "2024-12-31"})]))
    assert decide([c]).allowed


def test_matching_sibling_exceptions_deny_wins() -> None:
    for siblings in ([provision("permit"), provision("deny")], [provision("deny"), provision("permit")]):
        assert verdict(consent(provision("deny", actors=(), provision=siblings))) == "deny"


def test_deeper_exception_overrides_its_parent_exception() -> None:
    for_care = provision("permit", purpose=[TREAT])
    assert verdict(consent(provision("permit", provision=[provision("deny", provision=[for_care])]))) == (
        "permit"
    )
    for_research = provision("permit", purpose=[HRESCH])
    assert verdict(consent(provision("permit", provision=[provision("deny", provision=[for_research])]))) == (
        "deny"
    )


def test_nested_rules_do_not_apply_when_their_parent_does_not() -> None:
    c = consent(provision("permit", actors=(OTHER,), provision=[provision("permit", actors=(PARTNER,))]))
    assert verdict(c) is None


# --- purpose: a referral is for care -------------------------------------------------------------------


def test_a_permit_for_care_applies_and_one_for_research_does_not() -> None:
    assert decide([consent(provision(purpose=[TREAT]))]).allowed
    assert not decide([consent(provision(purpose=[HRESCH]))]).allowed
    assert not decide([consent(provision(purpose=[{"system": ACT_REASON, "code": "UNKNOWN"}]))]).allowed


@pytest.mark.parametrize(
    ("purposes", "blocks"),
    [
        ([HRESCH], False),  # research only: a care referral goes ahead
        ([HRESCH, HMARKT], False),
        ([{"system": ACT_REASON, "code": "CLINTRCH"}], False),
        ([TREAT], True),
        ([HRESCH, TREAT], True),  # research and care: blocks
        ([{"system": ACT_REASON, "code": "SOMETHING-NEW"}], True),  # unknown purpose: fail closed
        ([{"system": "https://example.org/purposes", "code": "HRESCH"}], True),  # another system
    ],
)
def test_a_deny_limited_to_non_care_purposes_does_not_block(purposes: list[Any], blocks: bool) -> None:
    deny = consent(provision("deny", purpose=purposes))
    assert (verdict(deny) == "deny") is blocks
    assert decide([deny], "opt-out").allowed is not blocks


def test_a_research_only_deny_leaves_a_permit_standing() -> None:
    research_deny = scoped("research", provision("deny", actors=(), purpose=[HRESCH]), cid="r1")
    assert decide([research_deny, consent(cid="p1")]).consent_id == "p1"


def test_action_matches_a_coding_or_a_codeable_concept() -> None:
    c = consent(provision(action=[{"coding": [DISCLOSE]}]))
    assert decide([c], action=DISCLOSE).allowed
    assert decide([c], action={"coding": [ACCESS, DISCLOSE]}).allowed
    assert not decide([c], action=ACCESS).allowed
    assert not decide([c]).allowed


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("class", [{"system": "http://hl7.org/fhir/resource-types", "code": "MedicationRequest"}]),
        ("data", [{"meaning": "instance", "reference": {"reference": "Observation/1"}}]),
        ("securityLabel", [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]),
        ("code", [{"text": "lab results"}]),
        ("dataPeriod", {"start": "2024-01-01"}),
    ],
)
def test_data_restrictions_fail_closed(element: str, value: Any) -> None:
    # The hub sends the whole referral: a permit for part of the record is not a permit for it, and a
    # deny for part of it stops it.
    assert verdict(consent(provision(**{element: value}))) is None
    assert "only part of the record" in (problem(consent(provision(**{element: value}))) or "")
    assert verdict(consent(provision("deny", **{element: value}))) == "deny"


# --- a recorded decline of peer support ----------------------------------------------------------------

DECLINE = Decline("qr1", "2025-01-12T10:00:00Z")


def test_a_decline_blocks_opt_out_without_a_newer_permit() -> None:
    decision = decide([], "opt-out", decline=DECLINE)
    assert not decision.allowed
    assert decision.rule.startswith("the patient declined peer support in QuestionnaireResponse/qr1")


def test_a_permit_older_than_the_decline_does_not_lift_it() -> None:
    older = consent(dateTime="2025-01-10T09:00:00Z")
    for model in ("opt-in", "opt-out"):
        decision = decide([older], model, decline=DECLINE)
        assert not decision.allowed
        assert decision.rule.endswith("(Consent/c1 was given before that decline)")


def test_a_newer_permit_naming_the_partner_lifts_the_decline() -> None:
    newer = consent(dateTime="2025-01-13")
    decision = decide([newer], "opt-out", decline=DECLINE)
    assert decision.allowed
    assert decision.consent_id == "c1"
    assert decision.rests_on_consent  # the referral now rests on that permit: access lapses with it


def test_a_same_day_date_only_permit_is_not_certainly_newer() -> None:
    assert not decide([consent(dateTime="2025-01-12")], "opt-out", decline=DECLINE).allowed


def test_a_newer_permit_must_still_be_a_disclosure_consent() -> None:
    for newer in (
        scoped("research", dateTime="2025-01-13"),
        consent(provision(actors=(OTHER,)), dateTime="2025-01-13"),
    ):
        assert not decide([newer], "opt-out", decline=DECLINE).allowed


def test_a_deny_still_wins_over_a_lifted_decline() -> None:
    newer = consent(dateTime="2025-01-13", cid="p1")
    deny = consent(provision("deny"), cid="d1")
    assert decide([newer, deny], "opt-out", decline=DECLINE).consent_id == "d1"


# --- structural checks ---------------------------------------------------------------------------------


def _expressions(c: dict[str, Any]) -> list[tuple[str, tuple[str, ...]]]:
    return [(i.code, i.expression) for i in consent_issues(c)]


def test_well_formed_consent_has_no_issues() -> None:
    c = consent(provision(period={"start": "2025-01-01", "end": "2026-01-01"}, provision=[provision("deny")]))
    assert consent_issues(c) == []


ROOT = "Consent.provision"
NO_ROLE = actor(PARTNER, code=None)
NO_LITERAL = {"role": {"text": "recipient"}, "reference": {"display": "Partner A"}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"patient": None}, ("required", ("Consent.patient",))),
        ({"patient": {"display": "someone"}}, ("required", ("Consent.patient",))),
        ({"patient": {"reference": "Group/g1"}}, ("value", ("Consent.patient.reference",))),
        ({"status": None}, ("required", ("Consent.status",))),
        ({"status": "withdrawn"}, ("code-invalid", ("Consent.status",))),
        ({"scope": None}, ("required", ("Consent.scope",))),
        ({"category": []}, ("required", ("Consent.category",))),
        ({"category": None}, ("required", ("Consent.category",))),
        ({"policyRule": None}, ("invariant", ("Consent",))),
        ({"provision": None}, ("required", ("Consent.provision.type",))),
        ({"provision": provision(None)}, ("required", ("Consent.provision.type",))),
        ({"provision": provision("allow")}, ("code-invalid", ("Consent.provision.type",))),
        ({"provision": provision(provision=[provision(None)])}, ("required", (f"{ROOT}.provision[0].type",))),
        ({"provision": {"type": "permit", "actor": [NO_ROLE]}}, ("required", (f"{ROOT}.actor[0].role",))),
        (
            {"provision": {"type": "permit", "actor": [NO_LITERAL]}},
            ("required", (f"{ROOT}.actor[0].reference",)),
        ),
        (
            {"provision": provision(period={"start": "2025-02-01", "end": "2025-01-01"})},
            ("value", (f"{ROOT}.period",)),
        ),
        ({"provision": provision(period={"start": "soon"})}, ("value", (f"{ROOT}.period",))),
        ({"provision": provision(period={"end": "2025-02-30"})}, ("value", (f"{ROOT}.period",))),
        (
            {"provision": provision(period={"end": "2025-01-01T10:00:00+24:00"})},
            ("value", (f"{ROOT}.period",)),
        ),
    ],
)
def test_structural_issues(change: dict[str, Any], expected: tuple[str, tuple[str, ...]]) -> None:
    c = consent()
    for key, value in change.items():
        if value is None:
            del c[key]
        else:
            c[key] = value
    assert _expressions(c) == [expected]


def test_a_permit_without_date_time_or_evidence_is_stored_with_warnings() -> None:
    c = consent()
    del c["dateTime"], c["sourceAttachment"]
    issues = consent_issues(c)
    assert [(i.severity, i.expression) for i in issues] == [
        ("warning", ("Consent.dateTime",)),
        ("warning", ("Consent.source[x]",)),
    ]
    # A deny needs neither: it blocks all the same.
    assert consent_issues(consent(provision("deny"), dateTime=None, sourceAttachment=None)) == []


def test_policy_instead_of_policy_rule_satisfies_ppc_1() -> None:
    c = consent()
    del c["policyRule"]
    c["policy"] = [{"uri": "https://wraparound.org.uk/consent-policy"}]
    assert consent_issues(c) == []


# --- the R4 specification's own examples ---------------------------------------------------------------


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"Consent-consent-example-{name}.json").read_text())
    return loaded


def test_r4_example_with_a_root_type_is_accepted() -> None:
    assert consent_issues(_example("notOrg")) == []


@pytest.mark.parametrize("name", ["Out", "basic", "notThis", "smartonfhir"])
def test_r4_examples_without_a_root_type_miss_only_that(name: str) -> None:
    assert _expressions(_example(name)) == [("required", ("Consent.provision.type",))]


def test_r4_not_org_example_denies_its_organisation() -> None:
    example = _example("notOrg")  # deny Organization/f001 (PRCP) for access and correct
    kwargs: dict[str, Any] = {"patient_ref": "Patient/f001", "model": "opt-out", "now": NOW}
    assert not evaluate_referral_consent([example], partner_org_ref="Organization/f001", **kwargs).allowed
    assert not evaluate_referral_consent(
        [example], partner_org_ref="Organization/f001", action=ACCESS, **kwargs
    ).allowed
    assert evaluate_referral_consent(
        [example], partner_org_ref="Organization/f001", action=DISCLOSE, **kwargs
    ).allowed
    assert evaluate_referral_consent([example], partner_org_ref="Organization/f002", **kwargs).allowed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # OPTOUT -> deny naming Organization/f001 as custodian (CST): a deny blocks whatever the role.
        ("Out", ("deny", "deny", "deny")),
        # OPTIN -> an inferred permit (1964-2016): never unlocks a disclosure.
        ("basic", (None, None, None)),
        # OPTIN, restricted to some data: an inferred permit, and for part of the record only.
        ("notThis", (None, None, None)),
        # OPTIN for one half hour on 2016-06-23 (17:02-17:32 +10:00): inferred, so it never unlocks.
        ("smartonfhir", (None, None, None)),
    ],
)
def test_r4_examples_without_a_root_type_are_read_from_policy_rule_but_never_unlock(
    name: str, expected: tuple[str | None, ...]
) -> None:
    example = _example(name)
    patient = example["patient"]["reference"]
    whens = (NOW, datetime(2016, 6, 23, 7, 10, tzinfo=UTC), datetime(2015, 6, 1, tzinfo=UTC))
    got = tuple(
        consent_verdict(example, patient_ref=patient, partner_org_ref="Organization/f001", now=when)
        for when in whens
    )
    assert got == expected


@pytest.mark.parametrize("name", ["Out", "basic", "notThis", "smartonfhir"])
def test_missing_root_type_is_only_a_warning(name: str) -> None:
    issues = consent_issues(_example(name))
    assert [i.severity for i in issues] == ["warning"]


def test_blanket_inferred_permit_does_not_satisfy_opt_in() -> None:
    example = _example("basic")
    decision = evaluate_referral_consent(
        [example],
        patient_ref="Patient/f001",
        partner_org_ref="Organization/f001",
        model="opt-in",
        now=datetime(2015, 6, 1, tzinfo=UTC),
    )
    assert not decision.allowed


@pytest.mark.parametrize(
    ("code", "expected"), [("OPTOUT", "deny"), ("OPTIN", None), ("OPTINR", None), ("OPTOUTE", None)]
)
def test_provision_less_consent_reads_policy_rule(code: str, expected: str | None) -> None:
    c = consent()
    del c["provision"]
    c["policyRule"] = {"coding": [{"system": V3_ACT, "code": code}]}
    assert verdict(c) == expected
