import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from service.referrals.consent import (
    ConsentDecision,
    consent_issues,
    consent_permits,
    evaluate_referral_consent,
    normalise_reference,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "fhir-r4-core"
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # January: London time is UTC, so day boundaries agree
PATIENT = "Patient/p1"
PARTNER = "Organization/partner-a"
OTHER = "Organization/partner-b"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
TREAT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}
HRESCH = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}
DISCLOSE = {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACCESS = {"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}


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
    out: dict[str, Any] = {
        "resourceType": "Consent",
        "id": cid,
        "status": "active",
        "scope": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": PATIENT},
        "policyRule": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
        },
        "provision": provision() if root is None else root,
    }
    out.update(extra)
    return out


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
    return consent_permits(c, patient_ref=PATIENT, partner_org_ref=partner, now=now, **kwargs)


# --- opt-in / opt-out basics ---------------------------------------------------------------------------


def test_permit_for_the_partner_allows_opt_in() -> None:
    decision = decide([consent()])
    assert decision.allowed
    assert decision.consent_id == "c1"


def test_permit_for_another_partner_does_not_allow_opt_in() -> None:
    decision = decide([consent(provision(actors=(OTHER,)))])
    assert decision == ConsentDecision(
        allowed=False,
        rule="opt-in service requires an active permit Consent naming the partner",
        consent_id=None,
    )


def test_no_consent_refuses_opt_in_and_allows_opt_out() -> None:
    assert not decide([]).allowed
    assert decide([], "opt-out") == ConsentDecision(
        True, "opt-out service: no active Consent denies this partner", None
    )


def test_deny_for_the_partner_refuses_opt_out() -> None:
    decision = decide([consent(provision("deny"), cid="d1")], "opt-out")
    assert not decision.allowed
    assert decision.consent_id == "d1"
    assert "denies" in decision.rule


def test_deny_for_another_partner_does_not_affect_this_one() -> None:
    deny_other = consent(provision("deny", actors=(OTHER,)), cid="d1")
    assert decide([deny_other], "opt-out").allowed
    assert decide([deny_other, consent(cid="p1")]).consent_id == "p1"
    assert decide([deny_other, consent(cid="p1")]).allowed


@pytest.mark.parametrize("model", ["opt-in", "opt-out"])
def test_a_deny_wins_over_a_permit_whatever_the_order(model: Literal["opt-in", "opt-out"]) -> None:
    permit, deny = consent(cid="p1"), consent(provision("deny"), cid="d1")
    for consents in ([permit, deny], [deny, permit]):
        assert decide(consents, model) == ConsentDecision(
            False, "an active Consent denies disclosure to this partner", "d1"
        )


def test_opt_out_reports_an_applicable_permit() -> None:
    assert decide([consent(cid="p1")], "opt-out").consent_id == "p1"


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


def test_wrong_patient_does_not_apply() -> None:
    other_patient = consent(patient={"reference": "Patient/p2"})
    assert verdict(other_patient) is None
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


# --- actors and roles ----------------------------------------------------------------------------------


def test_actor_without_role_applies() -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, code=None)]})
    assert decide([c]).allowed


@pytest.mark.parametrize("code", ["IRCP", "PRCP", "REFT"])
def test_recipient_roles_apply(code: str) -> None:
    assert decide([consent({"type": "permit", "actor": [actor(PARTNER, code)]})]).allowed


def test_recipient_role_in_the_old_v3_system_applies() -> None:
    c = consent(
        {"type": "permit", "actor": [actor(PARTNER, "IRCP", "http://hl7.org/fhir/v3/ParticipationType")]}
    )
    assert verdict(c) == "permit"


@pytest.mark.parametrize("code", ["CST", "AUT", "IRCP-ish"])
def test_non_recipient_role_does_not_apply(code: str) -> None:
    assert not decide([consent({"type": "permit", "actor": [actor(PARTNER, code)]})]).allowed
    assert decide([consent({"type": "deny", "actor": [actor(PARTNER, code)]})], "opt-out").allowed


def test_recipient_code_from_another_system_does_not_apply() -> None:
    c = consent({"type": "permit", "actor": [actor(PARTNER, "IRCP", "https://example.org/roles")]})
    assert verdict(c) is None


def test_one_matching_actor_among_several_is_enough() -> None:
    assert decide([consent(provision(actors=(OTHER, PARTNER)))]).allowed


def test_identifier_only_actor_never_matches() -> None:
    by_identifier = {
        "role": {"coding": [{"system": V3, "code": "IRCP"}]},
        "reference": {"identifier": {"value": "A"}},
    }
    c = consent({"type": "permit", "actor": [by_identifier]})
    assert verdict(c) is None


def test_actor_may_name_one_of_the_partners_services() -> None:
    c = consent(provision(actors=("HealthcareService/hs1",)))
    assert not decide([c]).allowed
    assert decide([c], partner_service_refs=["HealthcareService/hs1"]).allowed


def test_blanket_permit_is_not_enough_for_opt_in() -> None:
    blanket = consent(provision(actors=()))
    assert verdict(blanket) == "permit"
    assert not decide([blanket]).allowed
    assert decide([blanket], "opt-out").consent_id == "c1"


def test_blanket_deny_refuses_everyone() -> None:
    blanket = consent(provision("deny", actors=()))
    assert not decide([blanket], "opt-out").allowed
    assert not decide([blanket], "opt-out", partner=OTHER).allowed


# --- nested provisions ---------------------------------------------------------------------------------


def test_permit_with_nested_deny_for_the_partner() -> None:
    c = consent(provision(actors=(PARTNER, OTHER), provision=[provision("deny", actors=(PARTNER,))]))
    assert verdict(c) == "deny"
    assert not decide([c]).allowed
    assert decide([c], partner=OTHER).allowed  # the exception names only partner A


def test_deny_with_nested_permit_for_the_partner() -> None:
    c = consent(provision("deny", actors=(), provision=[provision("permit", actors=(PARTNER,))]))
    assert verdict(c) == "permit"
    assert decide([c]).allowed
    assert not decide([c], "opt-out", partner=OTHER).allowed


def test_nested_permit_inherits_the_parents_naming_of_the_partner() -> None:
    c = consent(provision("permit", provision=[provision("permit", actors=(), purpose=[TREAT])]))
    assert decide([c], purpose=TREAT).allowed


def test_nested_exception_outside_its_period_does_not_apply() -> None:
    c = consent(provision(provision=[provision("deny", period={"end": "2024-12-31"})]))
    assert decide([c]).allowed


def test_matching_sibling_exceptions_deny_wins() -> None:
    for siblings in ([provision("permit"), provision("deny")], [provision("deny"), provision("permit")]):
        assert verdict(consent(provision("deny", actors=(), provision=siblings))) == "deny"


def test_deeper_exception_overrides_its_parent_exception() -> None:
    grandchild = provision("permit", purpose=[TREAT])
    c = consent(provision("permit", provision=[provision("deny", provision=[grandchild])]))
    assert verdict(c, purpose=TREAT) == "permit"
    assert verdict(c, purpose=HRESCH) == "deny"


def test_nested_rules_do_not_apply_when_their_parent_does_not() -> None:
    c = consent(provision("permit", actors=(OTHER,), provision=[provision("deny", actors=(PARTNER,))]))
    assert verdict(c) is None


# --- purpose, action and data restrictions -------------------------------------------------------------


def test_purpose_must_match() -> None:
    c = consent(provision(purpose=[TREAT]))
    assert decide([c], purpose=TREAT).allowed
    assert not decide([c], purpose=HRESCH).allowed


def test_purpose_restricted_permit_needs_a_stated_purpose() -> None:
    assert not decide([consent(provision(purpose=[TREAT]))]).allowed


def test_purpose_restricted_deny_applies_when_the_purpose_is_unknown() -> None:
    deny = consent(provision("deny", purpose=[HRESCH]))
    assert not decide([deny], "opt-out").allowed
    assert decide([deny], "opt-out", purpose=TREAT).allowed


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
    assert verdict(consent(provision("deny", **{element: value}))) == "deny"


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
        # OPTOUT -> deny, but its only actor is a custodian (CST), not a recipient: it does not apply.
        ("Out", (None, None, None)),
        # OPTIN -> permit for anyone, 1964-2016 only.
        ("basic", (None, None, "permit")),
        # OPTIN, restricted to some data: the hub sends the whole referral, so it never permits.
        ("notThis", (None, None, None)),
        # OPTIN for one half hour on 2016-06-23 (17:02-17:32 +10:00).
        ("smartonfhir", (None, "permit", None)),
    ],
)
def test_r4_examples_without_a_root_type_infer_it_from_policy_rule(
    name: str, expected: tuple[str | None, ...]
) -> None:
    example = _example(name)
    patient = example["patient"]["reference"]
    whens = (NOW, datetime(2016, 6, 23, 7, 10, tzinfo=UTC), datetime(2015, 6, 1, tzinfo=UTC))
    got = tuple(
        consent_permits(example, patient_ref=patient, partner_org_ref="Organization/f001", now=when)
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
    ("code", "expected"), [("OPTOUT", "deny"), ("OPTIN", "permit"), ("OPTINR", None), ("OPTOUTE", None)]
)
def test_provision_less_consent_reads_policy_rule(code: str, expected: str | None) -> None:
    c = consent()
    del c["provision"]
    c["policyRule"] = {"coding": [{"system": V3_ACT, "code": code}]}
    assert verdict(c) == expected
