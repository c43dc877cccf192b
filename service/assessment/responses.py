"""The assessment wired into writes: QuestionnaireResponse and Questionnaire rules, and score Observations.

- Every QuestionnaireResponse write is validated against the exact Questionnaire its
  ``questionnaire`` canonical names (resolution rules in ``canonical``); problems become one 422
  and nothing is stored (http://hl7.org/fhir/R4/questionnaireresponse.html#link).
- Questionnaire writes (admins) are checked for que-2 and for clashing or in-place edits of a
  published ``url|version``: responses point at ``url|version``, so changing the items of a
  published version would silently change what old responses mean.
- After a completed/amended response to the shipped assessment is written, its scores are
  (re)computed and stored as survey Observations derived from it, visible to the same
  organisations as the response. Earlier score Observations of that response are deleted first.
- A positive PHQ-4 screen raises a Flag for the submitting clinic, and a negative one clears earlier
  ones (``flags``), in the same transaction.
"""

from __future__ import annotations

from typing import Any

from fhir_profiles import ASSESSMENT_SCORE_SYSTEM, ASSESSMENT_URL
from service.assessment import canonical, flags
from service.assessment._questionnaire import QuestionnaireIndex
from service.assessment.scoring import Score, compute_scores, score_observations
from service.assessment.validate import validate_response
from service.audit import record
from service.errors import Issue
from service.rest.context import Context
from service.rest.hooks import register_after_write
from service.rest.validation import register_rule
from service.search.extract import extract_index_rows
from service.storage import access, search_sql
from service.storage.resources import Stored

_QR = "QuestionnaireResponse"
_WHERE = "QuestionnaireResponse.questionnaire"
DERIVED_REASON = "derived"


def _issue(code: str, message: str, where: str) -> Issue:
    return Issue(code=code, diagnostics=message, expression=(where,))


def _memo_key(target: str) -> str:
    return f"assessment:questionnaire:{target}"


def _is_canonical(value: str) -> bool:
    # A canonical is an absolute URI (http://hl7.org/fhir/R4/datatypes.html#canonical); a literal
    # reference such as "Questionnaire/123" cannot name a version, so it is not accepted.
    url, _ = canonical.split(value)
    return url.startswith(("http://", "https://", "urn:uuid:", "urn:oid:"))


def check_response(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    target = new.get("questionnaire")
    if not isinstance(target, str) or not target:
        message = "QuestionnaireResponse.questionnaire (a canonical url|version) is required"
        return [_issue("required", message, _WHERE)]
    if not _is_canonical(target):
        message = f"questionnaire '{target}' is not a canonical URL (expected url|version)"
        return [_issue("value", message, _WHERE)]
    found = canonical.resolve(ctx.conn, "Questionnaire", target)
    if found is None or found.content is None:
        return [_issue("not-found", f"Questionnaire '{target}' is not known to this server", _WHERE)]
    ctx.memo[_memo_key(target)] = found.content  # the scoring hook of this write needs it again
    return validate_response(new, found.content, value_set_codes=canonical.ValueSetExpander(ctx.conn))


def check_questionnaire(ctx: Context, new: dict[str, Any], old: Stored | None) -> list[Issue]:
    issues = list(QuestionnaireIndex(new).issues)
    url, version = new.get("url"), new.get("version")
    if isinstance(url, str) and isinstance(version, str):
        own_id = old.id if old is not None else None
        for other in canonical.candidates(ctx.conn, "Questionnaire", url):
            if other.id != own_id and (other.content or {}).get("version") == version:
                issues.append(
                    _issue(
                        "duplicate",
                        f"Questionnaire {url}|{version} already exists as Questionnaire/{other.id}; "
                        "publish a new version instead",
                        "Questionnaire.version",
                    )
                )
    previous = (old.content or {}) if old is not None else {}
    if (
        previous.get("status") == "active"
        and previous.get("version") == version
        and previous.get("item") != new.get("item")
    ):
        issues.append(
            _issue(
                "business-rule",
                f"the items of the published version {version} cannot change; responses point at it. "
                "Publish a new version (a new Questionnaire with another version) instead",
                "Questionnaire.item",
            )
        )
    return issues


def _score_observations_of(ctx: Context, qr: Stored) -> list[Stored]:
    derived = search_sql.referencing(ctx.conn, "Observation", "derived-from", [(_QR, qr.id)])
    return [
        s
        for s in derived
        if any(
            c.get("system") == ASSESSMENT_SCORE_SYSTEM
            for c in (s.content or {}).get("code", {}).get("coding", [])
        )
    ]


def _answers_assessment(qr: dict[str, Any]) -> bool:
    target = qr.get("questionnaire")
    return isinstance(target, str) and canonical.split(target)[0] == ASSESSMENT_URL


def store_scores(ctx: Context, stored: Stored, old: Stored | None) -> None:
    """Replace the score Observations of a response, then re-evaluate its positive-screen Flag (same
    transaction as the response write)."""
    for previous in _score_observations_of(ctx, stored):
        ctx.store.delete(previous, now=ctx.now)
    scores, created = _write_scores(ctx, stored)
    if any(c is not None and _answers_assessment(c) for c in (stored.content, old.content if old else None)):
        flags.reevaluate(ctx, stored, old, scores, created)


def _write_scores(ctx: Context, stored: Stored) -> tuple[list[Score], list[Stored]]:
    qr = stored.content
    if stored.deleted or qr is None or not _answers_assessment(qr):
        return [], []
    target = str(qr["questionnaire"])
    questionnaire = ctx.memo.pop(_memo_key(target), None) or canonical.resolve_content(
        ctx.conn, "Questionnaire", target
    )
    if questionnaire is None:
        return [], []
    scores = compute_scores(qr, questionnaire)
    if not scores:
        return [], []
    organisations = access.organizations_with_access(ctx.conn, stored.rid)
    observations = score_observations(qr, f"{_QR}/{stored.id}", scores, ctx.instant)
    # All of them in one set of multi-row inserts, and each organisation's grants in one statement.
    created = ctx.store.create_many(
        "Observation", [(o, extract_index_rows(o)) for o in observations], now=ctx.now
    )
    for organisation in sorted(organisations):
        access.grant_many(ctx.conn, [obs.rid for obs in created], organisation, DERIVED_REASON)
    record.access(ctx, "create", created)
    return scores, created


register_rule(_QR, check_response)
register_rule("Questionnaire", check_questionnaire)
register_after_write(_QR, store_scores)
