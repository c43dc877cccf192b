"""Where a referral goes and whether consent lets it go there.

A referral's single performer is a partner Organization or one of its HealthcareServices
(CONTRACT.md "Referral flow"); the service's consent model comes from the extension
https://wraparound.org.uk/fhir/StructureDefinition/consent-model (``opt-in``, the default, or
``opt-out``). An Organization performer has no service to read a model from, so it is opt-in: the hub
never assumes a partner accepts referrals without consent.

The candidate Consents are the *active* Consents about the referral's Patient that the referring clinic
can see (Consent?patient=&status=active through the index tables); ``referrals.consent`` decides, with the
rules of CONTRACT.md "What counts as consent" (docs/adr/0009-consent-evaluation.md). A referral is a
disclosure for care (``purpose``); no action is passed, so a provision restricted to an action cannot
permit and, if it denies, denies. A peer-support service also honours a recorded decline (``decline``).

``decide`` is the one consent check: referral create (alone or in a transaction), referral update, the
access grant's lapse, and the re-evaluation after any Consent or assessment write (``withdrawal``) all
call it, so the delivery worker (which re-checks that the partner still holds its grant) follows too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fhir_profiles import CONSENT_MODEL_URL
from service.errors import Issue
from service.fhir.references import reference_of
from service.referrals._refs import local_parts, ref_id, resolve
from service.referrals.consent import ConsentDecision, evaluate_referral_consent
from service.referrals.decline import is_peer_support, organization_offers_peer_support, recorded_decline
from service.rest.context import Context
from service.storage import referrals as referral_sql

Model = Literal["opt-in", "opt-out"]


@dataclass(frozen=True)
class Route:
    partner_org_id: str
    service_refs: tuple[str, ...]  # the HealthcareService performer, when the referral names one
    model: Model
    peer_support: bool = False  # a recorded peer-support decline applies (decline.py)

    @property
    def partner_ref(self) -> str:
        return f"Organization/{self.partner_org_id}"


def consent_model(service: dict[str, Any]) -> Model:
    """The service's consent model; anything but an explicit ``opt-out`` is opt-in (fail closed)."""
    for extension in service.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == CONSENT_MODEL_URL:
            return "opt-out" if extension.get("valueCode") == "opt-out" else "opt-in"
    return "opt-in"


def resolve_route(ctx: Context, request: dict[str, Any]) -> Route | Issue:
    """The partner a referral goes to, or the Issue saying why its performer is not one."""
    performers = request.get("performer")
    if not isinstance(performers, list) or len(performers) != 1:
        return _issue(
            "ServiceRequest.performer",
            "a referral needs exactly one performer: a partner Organization or HealthcareService",
        )
    reference = reference_of(performers[0])
    parts = local_parts(ctx, reference) if reference else None
    if parts is None or parts[0] not in ("Organization", "HealthcareService"):
        return _issue(
            "ServiceRequest.performer[0]",
            "the performer must reference a partner Organization or HealthcareService on this hub",
        )
    target = resolve(ctx, reference, (parts[0],))
    if target is None or target.content is None or target.content.get("active") is False:
        return _issue(
            "ServiceRequest.performer[0]", f"the performer {parts[0]}/{parts[1]} is not an active entry"
        )
    if parts[0] == "Organization":
        return Route(parts[1], (), "opt-in", organization_offers_peer_support(ctx, parts[1]))
    provider_ref = reference_of(target.content.get("providedBy"))
    provider = resolve(ctx, provider_ref, ("Organization",))
    if provider is None or provider.content is None or provider.content.get("active") is False:
        return _issue(
            "ServiceRequest.performer[0]",
            f"the HealthcareService {parts[1]} has no active providing Organization (providedBy)",
        )
    return Route(
        provider.id,
        (f"HealthcareService/{parts[1]}",),
        consent_model(target.content),
        is_peer_support(target.content),
    )


def decide(ctx: Context, request: dict[str, Any], route: Route, clinic_org_id: str) -> ConsentDecision:
    """The consent decision for sending this referral along ``route``, as the referring clinic sees it."""
    subject = reference_of(request.get("subject"))
    parts = local_parts(ctx, subject) if subject else None
    if parts is None or parts[0] != "Patient":
        return ConsentDecision(False, "the referral has no Patient to check consent for", None)
    consents = referral_sql.active_consents(ctx.conn, parts[1], clinic_org_id)
    decline = recorded_decline(ctx, parts[1], clinic_org_id) if route.peer_support else None
    return evaluate_referral_consent(
        [c.content for c in consents if c.content is not None],
        patient_ref=f"Patient/{parts[1]}",
        partner_org_ref=route.partner_ref,
        model=route.model,
        now=ctx.now,
        partner_service_refs=route.service_refs,
        decline=decline,
    )


def decision_text(decision: ConsentDecision) -> str:
    """The audit wording: which Consent permitted, or that an opt-out service found no deny."""
    if decision.allowed and decision.consent_id:
        text = f"consent permitted by Consent/{decision.consent_id}"
        return "; warning: ".join([text, *decision.warnings])
    if decision.allowed:
        return "opt-out: no deny"
    return f"consent refused: {decision.rule}"


def clinic_org_of_task(task: dict[str, Any]) -> str | None:
    ref = reference_of(task.get("requester"))
    return ref_id(ref) if ref and ref.startswith("Organization/") else None


def _issue(expression: str, message: str) -> Issue:
    return Issue(code="business-rule", diagnostics=message, expression=(expression,))
