"""The R4 Consent provision tree, read for one partner (http://hl7.org/fhir/R4/consent.html#provision).

A root provision with a ``type`` (permit | deny), narrowed by period, actor, purpose, action and data, and
nested provisions that are exceptions to their parent: the most specific provision that applies decides,
and among siblings that apply, deny wins. ``consent`` holds the rules around it (ADR 0009).

An actor condition holds when an actor names the partner (or one of its services) in any role; a permit
counts as *named* only when that actor is in a recipient role. Purposes are read for care (``purpose``);
an action restriction with no action given, any data restriction and an unreadable period make a provision
apply "maybe": a maybe-deny denies, a maybe-permit does not permit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.referrals._period import period_covers
from service.referrals.purpose import deny_spares_care, permit_covers_care

V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_V3_PARTICIPATION_SYSTEMS = frozenset({V3_PARTICIPATION_TYPE, "http://hl7.org/fhir/v3/ParticipationType"})
V3_ACT_CODE = frozenset(
    {"http://terminology.hl7.org/CodeSystem/v3-ActCode", "http://hl7.org/fhir/v3/ActCode"}
)
RECIPIENT_ROLE_CODES = frozenset({"IRCP", "PRCP", "REFT"})
_DATA_RESTRICTIONS = ("securityLabel", "class", "code", "dataPeriod", "data")

# Outcomes of one provision subtree. Blanket permits (no actor named the partner as a recipient on the
# path) are kept apart: opt-in insists on a named permit.
DENY = "deny"
PERMIT_NAMED = "permit-named"
PERMIT_ANYONE = "permit-anyone"
Outcome = str | None  # one of the three above, or None: the subtree does not decide


@dataclass(frozen=True)
class Request:
    patient: str
    partners: frozenset[str]
    label: str  # the partner as named in messages
    now: datetime
    action: Mapping[str, Any] | None


def normalise_reference(reference: str) -> str:
    """'https://hub/fhir/Patient/1/_history/2' and 'Patient/1' both become 'Patient/1'."""
    ref = reference.strip().split("/_history/", 1)[0].rstrip("/")
    if ref.startswith(("urn:", "#")):
        return ref
    parts = ref.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else ref


def actor_names(actor: Mapping[str, Any], partners: Collection[str]) -> bool:
    """Whether a provision actor's literal reference is one of ``partners``, whatever its role."""
    reference = actor.get("reference")
    literal = reference.get("reference") if isinstance(reference, dict) else None
    return isinstance(literal, str) and normalise_reference(literal) in partners


def provision_outcomes(provision: dict[str, Any], request: Request, *, named_above: bool) -> set[Outcome]:
    applies, role = _applies(provision, request)
    if applies is False:
        return {None}
    named = named_above or role == "recipient"
    own: Outcome = None
    kind = provision.get("type")
    if kind == "deny":
        own = DENY
    elif kind == "permit" and role != "other":  # naming the partner in another role is not a permit to it
        own = PERMIT_NAMED if named else PERMIT_ANYONE
    children = [c for c in provision.get("provision") or [] if isinstance(c, dict)]
    inner: set[Outcome] = {None}
    for child in children:
        child_outcomes = provision_outcomes(child, request, named_above=named)
        inner = {_stronger(a, b) for a in inner for b in child_outcomes}
    # An applicable nested provision overrides its parent; otherwise the parent's own type stands.
    outcomes = {own if o is None else o for o in inner}
    if applies is None:  # maybe applies: it may equally not apply at all
        outcomes.add(None)
    return outcomes


def explicit_deny(provision: dict[str, Any], request: Request) -> bool:
    """A deny naming the partner blocks even when nested under a provision that does not apply to it
    (CONTRACT: a deny "blocks a referral to any partner it names"); its own subtree still decides."""
    period = provision.get("period")
    if isinstance(period, dict) and period_covers(period, request.now) is False:
        return False
    actors = [a for a in provision.get("actor") or [] if isinstance(a, dict)]
    names = any(actor_names(a, request.partners) for a in actors)
    if (
        names
        and provision.get("type") == "deny"
        and DENY in provision_outcomes(provision, request, named_above=False)
    ):
        return True
    return any(explicit_deny(c, request) for c in provision.get("provision") or [] if isinstance(c, dict))


def _stronger(a: Outcome, b: Outcome) -> Outcome:
    order = {None: 0, PERMIT_ANYONE: 1, PERMIT_NAMED: 2, DENY: 3}
    return a if order[a] >= order[b] else b


def _applies(provision: dict[str, Any], request: Request) -> tuple[bool | None, str | None]:
    """(True/False/None for applies/does not/maybe, how an actor names the partner: "recipient", "other"
    or None when no actor names it)."""
    verdicts: list[bool | None] = []
    period = provision.get("period")
    if isinstance(period, dict):
        verdicts.append(period_covers(period, request.now))
    actors = [a for a in provision.get("actor") or [] if isinstance(a, dict)]
    naming = [a for a in actors if actor_names(a, request.partners)]
    role = None
    if naming:
        role = "recipient" if any(_recipient_role(a) for a in naming) else "other"
    if actors:
        verdicts.append(bool(naming))
    purposes = [p for p in provision.get("purpose") or [] if isinstance(p, dict)]
    if purposes:
        if provision.get("type") == "permit":
            verdicts.append(permit_covers_care(purposes))
        else:
            verdicts.append(not deny_spares_care(purposes))
    actions = [c for a in provision.get("action") or [] if isinstance(a, dict) for c in codings(a)]
    if actions:
        verdicts.append(None if request.action is None else _any_coding_matches(actions, request.action))
    if any(provision.get(element) for element in _DATA_RESTRICTIONS):
        verdicts.append(None)
    if False in verdicts:
        return False, role
    return (None if None in verdicts else True), role


def _recipient_role(actor: Mapping[str, Any]) -> bool:
    role = actor.get("role")
    return isinstance(role, dict) and any(
        c.get("system") in _V3_PARTICIPATION_SYSTEMS and c.get("code") in RECIPIENT_ROLE_CODES
        for c in codings(role)
    )


def other_roles(provision: dict[str, Any], request: Request) -> set[str]:
    """The roles a permit names the partner in when none is a recipient role (for the refusal message)."""
    roles: set[str] = set()
    if provision.get("type") == "permit":
        for actor in provision.get("actor") or []:
            if (
                isinstance(actor, dict)
                and actor_names(actor, request.partners)
                and not _recipient_role(actor)
            ):
                roles.update(_role_codes(actor.get("role")) or ["no role"])
    for child in provision.get("provision") or []:
        if isinstance(child, dict):
            roles |= other_roles(child, request)
    return roles


def _role_codes(role: object) -> list[str]:
    return [str(c.get("code")) for c in codings(role) if c.get("code")] if isinstance(role, dict) else []


def codings(concept: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The codings of a CodeableConcept, or the value itself when it is a bare Coding."""
    if "coding" in concept:
        yield from (c for c in concept.get("coding") or [] if isinstance(c, dict))
    else:
        yield concept


def _any_coding_matches(restriction: Sequence[Mapping[str, Any]], wanted: Mapping[str, Any]) -> bool:
    wanted_codes = {(c.get("system"), c.get("code")) for c in codings(wanted) if c.get("code")}
    return any((c.get("system"), c.get("code")) in wanted_codes for c in restriction)
