import copy
from typing import Any

import pytest

from service.referrals.lifecycle import FINAL_STATES, Role, check_task_update, service_request_status_for

STATUSES = [
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
    "in-progress", "on-hold", "failed", "completed", "entered-in-error",
]  # fmt: skip
NON_FINAL = ["draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"]

# The referral state machine, written out independently of the implementation.
PARTNER_MOVES = {
    ("requested", "accepted"), ("requested", "rejected"),
    ("accepted", "in-progress"), ("accepted", "on-hold"), ("accepted", "completed"), ("accepted", "failed"),
    ("in-progress", "on-hold"), ("in-progress", "completed"), ("in-progress", "failed"),
    ("on-hold", "in-progress"), ("on-hold", "completed"), ("on-hold", "failed"),
}  # fmt: skip
CLINIC_MOVES = {(status, "cancelled") for status in NON_FINAL}
EITHER_MOVES = {(status, "entered-in-error") for status in STATUSES if status != "entered-in-error"}


def _movers(old: str, new: str) -> set[str]:
    movers = set()
    if (old, new) in PARTNER_MOVES or (old, new) in EITHER_MOVES:
        movers.add("partner")
    if (old, new) in CLINIC_MOVES or (old, new) in EITHER_MOVES:
        movers.add("clinic")
    return movers


def _task(status: str, **extra: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": "t1",
        "meta": {"versionId": "1", "lastUpdated": "2025-01-15T12:00:00Z"},
        "status": status,
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": "ServiceRequest/sr1"},
        "for": {"reference": "Patient/p1"},
        "requester": {"reference": "Organization/clinic"},
        "owner": {"reference": "Organization/partner"},
        "authoredOn": "2025-01-15T12:00:00Z",
    }
    task.update(extra)
    return task


def _moved(old: dict[str, Any], status: str, **extra: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["status"] = status
    new.update(extra)
    return new


REASON = {"text": "Patient moved out of area"}
TRANSITIONS = [(old, new) for old in STATUSES for new in STATUSES if old != new]


@pytest.mark.parametrize("role", ["partner", "clinic"])
@pytest.mark.parametrize(("old_status", "new_status"), TRANSITIONS)
def test_transition_matrix(old_status: str, new_status: str, role: Role) -> None:
    old = _task(old_status)
    issues = check_task_update(old, _moved(old, new_status, statusReason=REASON), role=role)
    movers = _movers(old_status, new_status)
    if role in movers:
        assert issues == []
        return
    assert len(issues) == 1
    assert issues[0].code == "business-rule"
    assert issues[0].expression == ("Task.status",)
    if movers:
        assert issues[0].diagnostics.startswith("only the ")
    else:
        assert issues[0].diagnostics == f"Task status cannot move from '{old_status}' to '{new_status}'"


@pytest.mark.parametrize(("old_status", "new_status"), TRANSITIONS)
def test_system_follows_the_state_machine_without_role_limits(old_status: str, new_status: str) -> None:
    old = _task(old_status)
    issues = check_task_update(old, _moved(old, new_status), role="system")
    if _movers(old_status, new_status):
        assert issues == []
    else:
        assert [i.diagnostics for i in issues] == [
            f"Task status cannot move from '{old_status}' to '{new_status}'"
        ]


def test_illegal_transition_message() -> None:
    old = _task("requested")
    issues = check_task_update(old, _moved(old, "completed"), role="partner")
    assert [i.diagnostics for i in issues] == ["Task status cannot move from 'requested' to 'completed'"]


@pytest.mark.parametrize("role", ["partner", "clinic", "system"])
@pytest.mark.parametrize("status", STATUSES)
def test_same_status_is_a_no_op(status: str, role: Role) -> None:
    old = _task(status)
    assert check_task_update(old, copy.deepcopy(old), role=role) == []


def test_rejection_needs_a_status_reason() -> None:
    old = _task("requested")
    issues = check_task_update(old, _moved(old, "rejected"), role="partner")
    assert [(i.code, i.expression) for i in issues] == [("business-rule", ("Task.statusReason",))]
    assert "statusReason" in issues[0].diagnostics


def test_clinic_cancellation_needs_a_status_reason() -> None:
    old = _task("accepted")
    issues = check_task_update(old, _moved(old, "cancelled"), role="clinic")
    assert [(i.code, i.expression) for i in issues] == [("business-rule", ("Task.statusReason",))]


@pytest.mark.parametrize(
    "reason",
    [{"text": "No capacity"}, {"coding": [{"system": "https://example.org/reasons", "code": "capacity"}]}],
)
def test_text_or_coded_status_reason_is_accepted(reason: dict[str, Any]) -> None:
    old = _task("requested")
    assert check_task_update(old, _moved(old, "rejected", statusReason=reason), role="partner") == []


@pytest.mark.parametrize("reason", [{}, {"text": "  "}, {"coding": [{"system": "x"}]}, "No capacity"])
def test_empty_or_malformed_status_reason_is_not_a_reason(reason: object) -> None:
    old = _task("requested")
    issues = check_task_update(old, _moved(old, "rejected", statusReason=reason), role="partner")
    assert [i.expression for i in issues] == [("Task.statusReason",)]


def test_system_cancellation_needs_no_reason() -> None:
    old = _task("in-progress")
    assert check_task_update(old, _moved(old, "cancelled"), role="system") == []


@pytest.mark.parametrize("status", ["failed", "completed", "on-hold", "accepted"])
def test_other_partner_moves_need_no_reason(status: str) -> None:
    old = _task("accepted" if status != "accepted" else "requested")
    assert check_task_update(old, _moved(old, status), role="partner") == []


PROTECTED_CHANGES: list[tuple[str, Any]] = [
    ("owner", {"reference": "Organization/someone-else"}),
    ("focus", {"reference": "ServiceRequest/other"}),
    ("for", {"reference": "Patient/other"}),
    ("requester", {"reference": "Organization/other"}),
    ("intent", "plan"),
    ("code", {"text": "something else"}),
    ("authoredOn", "2020-01-01"),
    ("priority", "urgent"),
    ("description", "changed"),
    ("executionPeriod", {"start": "2025-01-16"}),
    ("input", [{"type": {"text": "x"}, "valueString": "y"}]),
    ("restriction", {"repetitions": 1}),
    ("identifier", [{"system": "https://partner.example.org/case", "value": "42"}]),
    ("basedOn", [{"reference": "ServiceRequest/other"}]),
    ("extension", [{"url": "https://example.org/x", "valueString": "y"}]),
]


@pytest.mark.parametrize(("field", "value"), PROTECTED_CHANGES)
def test_partner_may_not_change_other_fields(field: str, value: Any) -> None:
    old = _task("requested")
    issues = check_task_update(old, _moved(old, "accepted", **{field: value}), role="partner")
    assert len(issues) == 1
    assert issues[0].code == "business-rule"
    assert issues[0].expression == (f"Task.{field}",)
    assert issues[0].diagnostics == (
        "a partner may change only status, businessStatus, statusReason, output and note of its Tasks; "
        f"'{field}' changed"
    )


def test_partner_removing_a_field_is_a_change() -> None:
    old = _task("accepted")
    new = _moved(old, "in-progress")
    del new["requester"]
    assert [i.expression for i in check_task_update(old, new, role="partner")] == [("Task.requester",)]


def test_field_changes_are_reported_even_without_a_status_change() -> None:
    old = _task("accepted")
    new = _moved(old, "accepted", owner={"reference": "Organization/x"}, priority="stat")
    issues = check_task_update(old, new, role="partner")
    assert [i.expression for i in issues] == [("Task.owner",), ("Task.priority",)]


def test_partner_may_change_its_own_fields() -> None:
    old = _task("accepted")
    new = _moved(
        old,
        "completed",
        businessStatus={"text": "Support plan agreed"},
        statusReason={"text": "done"},
        output=[{"type": {"text": "outcome"}, "valueString": "Housing advice given"}],
        note=[{"text": "Seen on 20 January"}],
    )
    assert check_task_update(old, new, role="partner") == []


def test_server_set_fields_are_ignored() -> None:
    old = _task("accepted")
    new = _moved(
        old,
        "in-progress",
        meta={"versionId": "2"},
        id="changed",
        text={"status": "generated", "div": "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"},
        lastModified="2025-01-16T09:00:00Z",
    )
    assert check_task_update(old, new, role="partner") == []


def test_key_order_is_not_a_change() -> None:
    old = _task("accepted", owner={"reference": "Organization/partner", "display": "Partner"})
    new = _moved(old, "in-progress", owner={"display": "Partner", "reference": "Organization/partner"})
    assert check_task_update(old, new, role="partner") == []


@pytest.mark.parametrize("field", ["output", "businessStatus", "owner", "priority"])
def test_clinic_may_change_only_status_reason_and_note(field: str) -> None:
    old = _task("accepted")
    new = _moved(old, "cancelled", statusReason=REASON, **{field: {"text": "x"}})
    issues = check_task_update(old, new, role="clinic")
    assert [i.expression for i in issues] == [(f"Task.{field}",)]
    assert issues[0].diagnostics.startswith("a clinic may change only status, statusReason and note")


def test_clinic_cancellation_with_note() -> None:
    old = _task("in-progress")
    new = _moved(old, "cancelled", statusReason=REASON, note=[{"text": "Referred elsewhere"}])
    assert check_task_update(old, new, role="clinic") == []


def test_system_may_change_any_field_when_cancelling() -> None:
    old = _task("in-progress")
    new = _moved(old, "cancelled", businessStatus={"text": "consent withdrawn"}, owner=None)
    assert check_task_update(old, new, role="system") == []


@pytest.mark.parametrize(("status", "code"), [("done", "code-invalid"), (None, "required"), (3, "required")])
def test_unknown_or_missing_status(status: object, code: str) -> None:
    old = _task("accepted")
    new = _moved(old, "accepted")
    new["status"] = status
    issues = check_task_update(old, new, role="partner")
    assert [(i.code, i.expression) for i in issues] == [(code, ("Task.status",))]


def test_final_states() -> None:
    assert frozenset({"completed", "failed", "rejected", "cancelled", "entered-in-error"}) == FINAL_STATES


@pytest.mark.parametrize(
    ("task_status", "expected"),
    [
        ("completed", "completed"),
        ("cancelled", "revoked"),
        ("entered-in-error", "entered-in-error"),
        *[(s, None) for s in STATUSES if s not in {"completed", "cancelled", "entered-in-error"}],
    ],
)
def test_service_request_status_for(task_status: str, expected: str | None) -> None:
    assert service_request_status_for(task_status) == expected
