"""Purpose of use: a referral is a disclosure for care, and a Consent provision may be limited by purpose.

R4 ``Consent.provision.purpose`` (http://hl7.org/fhir/R4/consent-definitions.html#Consent.provision.purpose)
is "the context of the activities a user is taking - why the user is accessing the data - that are
controlled by this rule", bound to v3 PurposeOfUse (ActReason,
http://terminology.hl7.org/CodeSystem/v3-ActReason). Every referral the hub sends is for the person's care,
so a provision's purposes are read against that one purpose, asymmetrically, so that the hub fails closed:

- a *permit* limited by purpose applies only when one of its purposes is a care purpose (below);
- a *deny* limited by purpose is set aside only when *every* purpose it lists is a known non-care purpose
  (research, marketing, payment and coverage); a deny with any other purpose, including an unknown code or a
  code from another system, still blocks.

Scope is not a purpose: a deny in a ``research``-scoped Consent with no ``provision.purpose`` still blocks
(see docs/adr/0009-consent-evaluation.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ACT_REASON_SYSTEMS = frozenset(
    {"http://terminology.hl7.org/CodeSystem/v3-ActReason", "http://hl7.org/fhir/v3/ActReason"}
)

# v3 ActReason purposes that describe the care a referral serves: treatment (TREAT), emergency treatment
# (ETREAT), coordination of care (COC), care management (CAREMGT) and disclosure at the patient's request
# (PATRQT).
CARE_PURPOSES = frozenset({"TREAT", "ETREAT", "COC", "CAREMGT", "PATRQT"})

# v3 ActReason purposes that are never care: healthcare research (HRESCH) and its specialisations
# (biomedical, clinical trial, disease-specific, population-origins and translational research), healthcare
# marketing (HMARKT), payment (HPAYMT) and coverage (COVERAGE).
NON_CARE_PURPOSES = frozenset(
    {"HRESCH", "BIORCH", "CLINTRCH", "DSRCH", "POARCH", "TRANSRCH", "HMARKT", "HPAYMT", "COVERAGE"}
)


def _codes(purposes: Iterable[Mapping[str, Any]]) -> list[tuple[object, object]]:
    return [(p.get("system"), p.get("code")) for p in purposes]


def permit_covers_care(purposes: Iterable[Mapping[str, Any]]) -> bool:
    """A purpose-limited permit applies to a referral when one of its purposes is care."""
    return any(system in ACT_REASON_SYSTEMS and code in CARE_PURPOSES for system, code in _codes(purposes))


def deny_spares_care(purposes: Iterable[Mapping[str, Any]]) -> bool:
    """A purpose-limited deny leaves a referral alone only when all its purposes are known non-care ones."""
    codes = _codes(purposes)
    return bool(codes) and all(
        system in ACT_REASON_SYSTEMS and code in NON_CARE_PURPOSES for system, code in codes
    )
