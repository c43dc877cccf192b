"""One referral as a person sees it: the Task, who to contact and how, the reason, the assessment (the
caller's view of it), the consent, and the Task's history.

Every record is read through ``rest.interactions.read`` as the person: authorised, visible only to the
organisations that may see it (another organisation's Task is 404, as in the API), minimised for a
partner, and audited. A ServiceRequest no longer shared (the Task was rejected or cancelled) is simply
not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.errors import NotFound
from service.rest import history, interactions
from service.rest.context import Context
from service.web import labels
from service.web.assessment_view import Node, render
from service.web.consent_summary import summarise


@dataclass(frozen=True)
class Contact:
    system: str
    value: str
    use: str


@dataclass(frozen=True)
class Step:
    when: str
    status: str
    business_status: str
    reason: str
    outcome: str


@dataclass
class Referral:
    task: dict[str, Any]
    version: int
    request: dict[str, Any] | None = None
    patient: dict[str, Any] | None = None
    contacts: list[Contact] = field(default_factory=list)
    assessments: list[list[Node]] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.task["id"])

    @property
    def status(self) -> str:
        return str(self.task.get("status"))

    @property
    def status_label(self) -> str:
        return labels.STATUS.get(self.status, self.status)

    @property
    def business_status(self) -> str:
        return labels.concept_text(self.task.get("businessStatus"))

    @property
    def person(self) -> str:
        return labels.human_name(self.patient) if self.patient else "No longer shared with you"

    @property
    def reason(self) -> list[str]:
        request = self.request or {}
        found = [labels.concept_text(c) for c in request.get("reasonCode") or []]
        code = request.get("code") or {}
        # The referral's code only when it says something in words (a bare SNOMED id tells a person nothing).
        found.extend(
            str(c["display"]) for c in code.get("coding") or [] if isinstance(c, dict) and c.get("display")
        )
        if code.get("text"):
            found.append(str(code["text"]))
        return [text for text in found if text]

    @property
    def preferences(self) -> list[str]:
        """How the person wants (and does not want) to be contacted, as the clinic wrote it."""
        request = self.request or {}
        found = [str(request.get("patientInstruction") or "")]
        found.extend(str(note.get("text") or "") for note in request.get("note") or [])
        return [text for text in found if text]


def _read(ctx: Context, reference: Any, wanted: str) -> dict[str, Any] | None:
    ref = str((reference or {}).get("reference") or "") if isinstance(reference, dict) else ""
    rtype, _, rid = ref.partition("/")
    if rtype != wanted or not rid:
        return None
    try:
        return interactions.read(ctx, rtype, rid).body
    except NotFound:
        return None


def load(ctx: Context, task_id: str) -> Referral:
    result = interactions.read(ctx, "Task", task_id)  # 404 for a Task the organisation may not see
    assert result.stored is not None
    assert result.body is not None
    referral = Referral(task=result.body, version=result.stored.version_id)
    referral.request = _read(ctx, result.body.get("focus"), "ServiceRequest")
    referral.patient = _read(ctx, result.body.get("for"), "Patient")
    referral.contacts = [
        Contact(str(t.get("system") or "contact"), str(t["value"]), str(t.get("use") or ""))
        for t in (referral.patient or {}).get("telecom") or []
        if isinstance(t, dict) and t.get("value") and not (t.get("period") or {}).get("end")
    ]
    for info in (referral.request or {}).get("supportingInfo") or []:
        if (assessment := _read(ctx, info, "QuestionnaireResponse")) is not None:
            referral.assessments.append(render(assessment))
        elif (consent := _read(ctx, info, "Consent")) is not None:
            referral.consents.append(summarise(ctx, consent))
    referral.steps = _steps(history.instance(ctx, "Task", task_id, [("_count", "100")]))
    return referral


def _steps(bundle: dict[str, Any]) -> list[Step]:
    """Each version of the Task, oldest first (history bundles list the newest first)."""
    steps: list[Step] = []
    for entry in reversed(bundle.get("entry") or []):
        task = entry.get("resource")
        if not isinstance(task, dict):
            continue
        outcome = [
            str(o.get("valueString") or labels.concept_text(o.get("valueCodeableConcept")))
            for o in task.get("output") or []
            if isinstance(o, dict)
        ]
        steps.append(
            Step(
                when=str((task.get("meta") or {}).get("lastUpdated") or "")[:16].replace("T", " "),
                status=labels.STATUS.get(str(task.get("status")), str(task.get("status"))),
                business_status=labels.concept_text(task.get("businessStatus")),
                reason=labels.concept_text(task.get("statusReason")),
                outcome="; ".join(o for o in outcome if o),
            )
        )
    return steps
