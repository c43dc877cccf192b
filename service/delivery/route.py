"""Which Endpoint a recipient is reached at (CONTRACT.md "Delivery adapters").

A partner is reached at the Endpoint of the HealthcareService the referral names (its
``HealthcareService.endpoint``), else at its ``Organization.endpoint``; a clinic at its
``Organization.endpoint``. Only an ``active`` Endpoint counts. No Endpoint means the recipient
pulls: it works from ``Task?owner=…&status=requested`` and nothing is pushed.
"""

from __future__ import annotations

from service.fhir.references import as_list, reference_of
from service.rest.context import Context
from service.storage.resources import Stored


def _first_active_endpoint(ctx: Context, holder: Stored | None) -> Stored | None:
    if holder is None or holder.content is None or holder.deleted:
        return None
    for element in as_list(holder.content.get("endpoint")):
        reference = reference_of(element)
        if not reference or not reference.startswith("Endpoint/"):
            continue
        endpoint = ctx.store.current("Endpoint", reference.split("/", 1)[1])
        if (
            endpoint is not None
            and not endpoint.deleted
            and (endpoint.content or {}).get("status") == "active"
        ):
            return endpoint
    return None


def _service_of(ctx: Context, request: Stored | None, recipient_org: str) -> Stored | None:
    """The HealthcareService the referral names, when it belongs to the recipient."""
    for performer in as_list((request.content or {}).get("performer") if request else None):
        reference = reference_of(performer)
        if reference and reference.startswith("HealthcareService/"):
            service = ctx.store.current("HealthcareService", reference.split("/", 1)[1])
            provider = reference_of((service.content or {}).get("providedBy")) if service else None
            if provider == f"Organization/{recipient_org}":
                return service
    return None


def endpoint_for(ctx: Context, request: Stored | None, recipient_org: str) -> Stored | None:
    """The recipient's active Endpoint for deliveries about a referral (its ServiceRequest, read once by
    the caller); None: the recipient pulls."""
    service = _service_of(ctx, request, recipient_org)
    # A worker prepares a batch in one transaction: look each service's and organisation's route up once.
    key = f"endpoint:{recipient_org}:{service.id if service else ''}"
    if key not in ctx.memo:
        found = _first_active_endpoint(ctx, service)
        if found is None:
            found = _first_active_endpoint(ctx, ctx.store.current("Organization", recipient_org))
        ctx.memo[key] = found
    endpoint: Stored | None = ctx.memo[key]
    return endpoint
