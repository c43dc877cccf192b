"""The pages behind the sign-in: ``/app/`` (a partner's inbox or a clinic's tracker), the inbox's refresh
fragment, a referral's page and its actions. Routes are thin: find the person, run the domain work as
them in one transaction (``person.run``), render."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.errors import FhirError, NotFound
from service.rest.context import Context
from service.settings import Settings
from service.storage.database import Database
from service.web import actions, csrf, follow_up, labels, listing, referral_page
from service.web.current import check_form_token, current_session, require_person, source_of
from service.web.pages import render
from service.web.person import caller_for, run
from service.web.sessions import Session

router = APIRouter()
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
Text = Annotated[str, Form(max_length=2000)]


def _work(request: Request, session: Session, action: str, work: Any) -> Any:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.database
    return run(db, settings, caller_for(session.person, source_of(request)), action, work)


def _page_context(session: Session, **values: Any) -> dict[str, Any]:
    return {"person": session.person, "csrf_token": csrf.token_for(session.token), **values}


def _list(request: Request, session: Session, status: str, service: str, partner: str) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    wanted = status if status in labels.STATUS else ""

    def work(ctx: Context) -> dict[str, Any]:
        rows = listing.task_rows(ctx, target_days=settings.first_contact_working_days, status=wanted or None)
        flags = follow_up.active_flags(ctx) if ctx.caller.role == "clinic" else []
        return {"rows": rows, "flags": flags}

    found = _work(request, session, "search", work)
    rows: list[listing.Row] = found["rows"]
    services = sorted({r.service for r in rows})
    partners = sorted({r.partner for r in rows})
    if service:
        rows = [r for r in rows if r.service == service]
    if partner:
        rows = [r for r in rows if r.partner == partner]
    return _page_context(
        session,
        rows=listing.inbox_order(rows),
        flags=found["flags"],
        services=services,
        partners=partners,
        filters={"status": wanted, "service": service, "partner": partner},
        target=settings.first_contact_working_days,
    )


@router.get("/")
def home(
    request: Request,
    session: Annotated[Session, Depends(require_person)],
    status: str = "",
    service: str = "",
    partner: str = "",
) -> Response:
    context = _list(request, session, status, service, partner)
    template = "inbox.html" if session.person.role == "partner" else "tracker.html"
    return render(request, template, context)


@router.get("/rows")
def rows_fragment(request: Request, status: str = "", service: str = "", partner: str = "") -> Response:
    """The list's rows alone, for the page's background refresh (which keeps no session alive)."""
    session = current_session(request, activity=False)
    context = _list(request, session, status, service, partner)
    template = "_inbox_rows.html" if session.person.role == "partner" else "_tracker_rows.html"
    return render(request, template, context)


def _referral_page(
    request: Request, session: Session, task_id: str, *, errors: list[str], done: str = "", status: int = 200
) -> Response:
    if not _FHIR_ID.match(task_id):
        raise NotFound(f"Task/{task_id} is not known")
    referral = _work(request, session, "read", lambda ctx: referral_page.load(ctx, task_id))
    context = _page_context(session, referral=referral, errors=errors, done=actions.DONE.get(done, ""))
    return render(request, "referral.html", context, status=status)


@router.get("/referrals/{task_id}")
def referral(
    request: Request, task_id: str, session: Annotated[Session, Depends(require_person)], done: str = ""
) -> Response:
    return _referral_page(request, session, task_id, errors=[], done=done)


@router.post("/referrals/{task_id}/{action}")
def act(
    request: Request,
    task_id: str,
    action: str,
    session: Annotated[Session, Depends(require_person)],
    csrf_token: Text = "",
    version: Text = "",
    reason: Text = "",
    outcome: Text = "",
) -> Response:
    check_form_token(session, csrf_token)
    if not _FHIR_ID.match(task_id) or (action not in actions.TASK_ACTIONS and action != "withdrawal"):
        raise NotFound(f"Task/{task_id} has no action {action!r}")
    form = {"reason": reason, "outcome": outcome}

    def work(ctx: Context) -> None:
        if action == "withdrawal":
            actions.record_withdrawal(ctx, task_id)
        else:
            actions.move(ctx, task_id, action, version, form)

    try:
        _work(request, session, "update", work)
    except NotFound:
        raise
    except FhirError as exc:
        # The rule that stopped the move, in the domain's own words (as the API's OperationOutcome).
        errors = [issue.diagnostics for issue in exc.outcome_issues()]
        if exc.status == 412:
            errors = ["Someone changed this referral after you opened it. Check it below, then try again."]
        return _referral_page(request, session, task_id, errors=errors, status=exc.status)
    return RedirectResponse(f"/app/referrals/{task_id}?done={action}", status_code=303)
