"""Words people read for the codes the referral workflow uses."""

from __future__ import annotations

from typing import Any

STATUS = {
    "requested": "New",
    "accepted": "Accepted",
    "in-progress": "In progress",
    "on-hold": "On hold",
    "completed": "Completed",
    "rejected": "Rejected",
    "cancelled": "Cancelled",
    "failed": "Closed, not completed",
    "entered-in-error": "Entered in error",
}
OPEN = ("requested", "accepted", "in-progress", "on-hold")
URGENCY = {"now": "Now", "soon": "Soon", "not-urgent": "Not urgent"}
BUSINESS_STATUS = {
    "contact-attempted": "Contact attempted",
    "contacted": "Contacted",
    "first-appointment": "First appointment booked",
    "did-not-attend": "Did not attend",
    "waitlisted": "Waitlisted",
    "closed-no-contact": "Closed: no contact",
}


def concept_text(concept: Any) -> str:
    """A CodeableConcept as words: its text, else a coding's display, else a known code's label."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict):
            code = str(coding.get("code") or "")
            return str(coding.get("display") or BUSINESS_STATUS.get(code) or code)
    return ""


def business_code(task: dict[str, Any]) -> str | None:
    for coding in (task.get("businessStatus") or {}).get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return None


def human_name(patient: dict[str, Any] | None) -> str:
    for name in (patient or {}).get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return "Name not given"
