"""SDC ``Questionnaire/$populate``: an in-progress QuestionnaireResponse, prefilled, never stored.

http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate, as profiled by
``fhir_profiles/data/OperationDefinition-populate.json``. Only clinics may call it (it prepares a
response they will create), for a Patient they can see, against a Questionnaire held here, so
the response can name the exact ``url|version`` the hub will validate it against.

Sources (item-level rules in ``_prefill``):

- The previous response, for the shipped assessment only: the clinic's most recent completed or
  amended response for the same patient to any version of the form. Only the ``needs`` and
  ``peer-support`` groups are copied: they record circumstances that persist between visits and
  are quicker to confirm than to re-enter. The scored instruments (ONS4, PHQ-4, PozQoL) are never
  copied: they measure change over time, so every administration must be a fresh answer, and a
  copied answer would be indistinguishable from a real one in the score Observations.
- The Patient, through ``sdc-questionnaire-initialExpression`` (``%patient`` and ``%subject``),
  for any Questionnaire that uses it (the shipped form asks no demographics); ``item.initial``.

Items that could not be prefilled are reported as warnings in the ``issues`` output. Answers that
would make the response invalid against the target version (e.g. a copied code no longer offered)
are dropped and reported too, so the response always validates as ``in-progress``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir_profiles import ASSESSMENT_URL
from service.access import policy
from service.assessment import canonical
from service.assessment._prefill import Prefill, types_by_link_id
from service.assessment._prune import prune
from service.audit import record
from service.errors import (
    BadRequest,
    Forbidden,
    Issue,
    NotFound,
    NotSupported,
    Unprocessable,
    operation_outcome,
)
from service.fhir.ids import is_id
from service.rest import capability, interactions
from service.rest.context import Context
from service.rest.search import find
from service.storage.resources import Stored

NAME = "populate"
DEFINITION = "http://hl7.org/fhir/uv/sdc/OperationDefinition/Questionnaire-populate"
# Groups of the shipped assessment copied from the previous response (see the module docstring).
CARRIED = frozenset({"needs", "peer-support"})
_FINISHED = "completed,amended"
_MAX_PREVIOUS = 500
_IGNORED = frozenset({"local"})
_TARGETS = ("identifier", "canonical", "questionnaire", "questionnaireRef")

capability.register_operation("Questionnaire", NAME, DEFINITION)


def _bad(message: str, where: str | None = None) -> BadRequest:
    return BadRequest(message, issues=[Issue(code="invalid", diagnostics=message,
                                             expression=(where,) if where else ())])  # fmt: skip


def _parameters(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise _bad("The request body must be a Parameters resource")
    params = body.get("parameter", [])
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise _bad("Parameters.parameter must be a list of parameters", "Parameters.parameter")
    return params


def populate(ctx: Context, body: Any, questionnaire_id: str | None = None) -> dict[str, Any]:
    """The Parameters output (``response`` and optional ``issues``) for a type- or instance-level call."""
    policy.authorize(ctx.caller, "QuestionnaireResponse", "create")
    policy.authorize(ctx.caller, "Questionnaire", "read")
    policy.authorize(ctx.caller, "Patient", "read")
    params = _parameters(body)
    warnings = _unused(params)
    patient_id = _subject(ctx, params)
    stored_q = (
        interactions.load_visible(ctx, "Questionnaire", questionnaire_id)
        if questionnaire_id is not None
        else _questionnaire(ctx, params)
    )
    questionnaire = stored_q.content or {}
    target = _canonical_of(questionnaire, stored_q.id)
    patient = interactions.load_visible(ctx, "Patient", patient_id)
    previous = _previous(ctx, patient_id, questionnaire)
    prefill = _prefill(ctx, patient.content or {}, previous)
    items = prefill.items(questionnaire)
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": target,
        "status": "in-progress",
        "subject": {"reference": f"Patient/{patient_id}"},
        "authored": ctx.now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "author": {"reference": ctx.caller.organization_ref},
    }
    if items:
        response["item"] = items
    issues = warnings + prefill.issues + prune(response, questionnaire, canonical.ValueSetExpander(ctx.conn))
    used = [stored_q, patient, *([previous] if previous is not None else [])]
    record.access(ctx, "operation", used, patients=[f"Patient/{patient_id}"])
    output: list[dict[str, Any]] = [{"name": "response", "resource": response}]
    if issues:
        output.append({"name": "issues", "resource": operation_outcome(issues)})
    return {"resourceType": "Parameters", "parameter": output}


def _unused(params: list[dict[str, Any]]) -> list[Issue]:
    known = {"subject", *_TARGETS, *_IGNORED}
    return [
        Issue(code="not-supported", severity="warning", expression=(f"Parameters.parameter[{i}]",),
              diagnostics=f"parameter '{p.get('name')}' is not supported here and was ignored")
        for i, p in enumerate(params)
        if p.get("name") not in known
    ]  # fmt: skip


def _subject(ctx: Context, params: list[dict[str, Any]]) -> str:
    found = [(i, p) for i, p in enumerate(params) if p.get("name") == "subject"]
    if not found:
        raise _bad("The subject parameter (a Patient reference) is required", "Parameters.parameter")
    if len(found) > 1:
        raise _bad("Only one subject may be given", f"Parameters.parameter[{found[1][0]}]")
    i, param = found[0]
    ref = (param.get("valueReference") or {}).get("reference")
    if not isinstance(ref, str):
        raise _bad("subject must be a valueReference with a reference", f"Parameters.parameter[{i}]")
    ref = ref.removeprefix(f"{ctx.base_url}/")
    kind, _, rid = ref.partition("/")
    if kind != "Patient":
        raise NotSupported(
            "This server populates questionnaires for Patients only",
            issues=[Issue(code="not-supported", diagnostics=f"subject '{ref}' is not a Patient",
                          expression=(f"Parameters.parameter[{i}]",))],
        )  # fmt: skip
    if not is_id(rid):
        raise _bad(f"subject '{ref}' is not a valid Patient reference", f"Parameters.parameter[{i}]")
    return rid


def _questionnaire(ctx: Context, params: list[dict[str, Any]]) -> Stored:
    given = [(i, p) for i, p in enumerate(params) if p.get("name") in _TARGETS]
    if len(given) != 1:
        # SDC: "one and only one of the identifier, questionnaire or questionnaireRef in parameters".
        raise _bad("Give exactly one of identifier, canonical, questionnaire or questionnaireRef "
                   "(or call Questionnaire/{id}/$populate)", "Parameters.parameter")  # fmt: skip
    i, param = given[0]
    where = f"Parameters.parameter[{i}]"
    if "resource" in param:
        raise NotSupported(
            "Only Questionnaires held by this server can be populated; pass its canonical url|version",
            issues=[Issue(code="not-supported", diagnostics="a contained Questionnaire is not accepted",
                          expression=(where,))],
        )  # fmt: skip
    identifier = param.get("valueIdentifier")
    if isinstance(identifier, dict):
        return _by_identifier(ctx, identifier, where)
    reference = (param.get("valueReference") or {}).get("reference")
    if isinstance(reference, str):
        local = reference.removeprefix(f"{ctx.base_url}/")
        kind, _, rid = local.partition("/")
        if kind == "Questionnaire" and is_id(rid):
            return interactions.load_visible(ctx, "Questionnaire", rid)
        return _by_canonical(ctx, reference)
    for key in ("valueCanonical", "valueUri", "valueUrl", "valueString"):
        if isinstance(param.get(key), str) and param[key]:
            return _by_canonical(ctx, param[key])
    raise _bad(f"parameter '{param.get('name')}' has no usable value", where)


def _by_canonical(ctx: Context, target: str) -> Stored:
    found = canonical.resolve(ctx.conn, "Questionnaire", target)
    if found is None or found.content is None:
        raise NotFound(f"Questionnaire '{target}' is not known to this server")
    return found


def _by_identifier(ctx: Context, identifier: dict[str, Any], where: str) -> Stored:
    system, value = identifier.get("system"), identifier.get("value")
    if not isinstance(value, str) or not value:
        raise _bad("identifier has no value", where)
    token = f"{system}|{value}" if isinstance(system, str) else value
    urls = {
        (s.content or {}).get("url") for s in find(ctx, "Questionnaire", [("identifier", token)], limit=50)
    }
    if not urls:
        raise NotFound(f"No Questionnaire has identifier '{token}'")
    if len(urls) > 1 or not all(isinstance(u, str) for u in urls):
        raise Unprocessable(
            f"Identifier '{token}' names several Questionnaires; pass a canonical url|version"
        )
    return _by_canonical(ctx, str(urls.pop()))


def _canonical_of(questionnaire: dict[str, Any], rid: str) -> str:
    url, version = questionnaire.get("url"), questionnaire.get("version")
    if not isinstance(url, str) or not isinstance(version, str):
        # Responses must name url|version (QuestionnaireResponse rules in ``responses``).
        raise Unprocessable(f"Questionnaire/{rid} has no url and version, so no response can point at it")
    subject_types = questionnaire.get("subjectType")
    if isinstance(subject_types, list) and subject_types and "Patient" not in subject_types:
        raise Unprocessable(f"Questionnaire/{rid} is not about Patients (subjectType {subject_types})")
    return f"{url}|{version}"


def _previous(ctx: Context, patient_id: str, questionnaire: dict[str, Any]) -> Stored | None:
    """The caller's most recent finished response to any version of the shipped assessment."""
    if questionnaire.get("url") != ASSESSMENT_URL:
        return None
    try:
        policy.authorize(ctx.caller, "QuestionnaireResponse", "search-type")
    except Forbidden:
        return None  # a token without QuestionnaireResponse search scope gets no carried answers
    criteria = [
        ("subject", f"Patient/{patient_id}"),
        ("questionnaire", ASSESSMENT_URL),
        ("status", _FINISHED),
    ]
    found = [s for s in find(ctx, "QuestionnaireResponse", criteria, limit=_MAX_PREVIOUS) if s.content]
    return max(found, key=_recency, default=None)


def _recency(stored: Stored) -> tuple[datetime, datetime]:
    authored = (stored.content or {}).get("authored")
    last = stored.last_updated if stored.last_updated.tzinfo else stored.last_updated.replace(tzinfo=UTC)
    try:
        when = datetime.fromisoformat(str(authored).replace("Z", "+00:00"))
    except ValueError:
        return last, last  # partial dates (e.g. "2026-11") fall back to when it was stored
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), last


def _prefill(ctx: Context, patient: dict[str, Any], previous: Stored | None) -> Prefill:
    env = {"patient": patient, "subject": patient}
    if previous is None or previous.content is None:
        return Prefill(env)
    answered = canonical.resolve_content(
        ctx.conn, "Questionnaire", str(previous.content.get("questionnaire"))
    )
    if answered is None:
        return Prefill(env)  # the version it answered is gone: item types cannot be compared
    return Prefill(
        env,
        carried=CARRIED,
        previous_items=[i for i in previous.content.get("item", []) if isinstance(i, dict)],
        previous_types=types_by_link_id(answered),
    )
