"""Validate a QuestionnaireResponse against the Questionnaire it answers (FHIR R4 + SDC).

http://hl7.org/fhir/R4/questionnaireresponse.html#link and
http://hl7.org/fhir/R4/questionnaire.html. All problems are collected; an empty list means valid.
Issue codes: ``structure`` (tree, linkId, order, cardinality), ``value`` (answer types, options,
constraints), ``required`` (required/minOccurs, only for completed/amended responses),
``business-rule`` (answers on disabled items), ``invariant`` (qrs-1, que-2).
"""

from __future__ import annotations

from typing import Any

from service.assessment._answers import AnswerChecker, ValueSetCodes
from service.assessment._enablewhen import Enablement
from service.assessment._questionnaire import (
    MAX_OCCURS,
    MIN_OCCURS,
    JsonDict,
    QuestionnaireIndex,
    child_defs,
    extension_value,
    is_question,
    is_repeating_group,
    value_x,
)
from service.assessment._tree import Node, build_tree
from service.errors import Issue

# Required-ness only binds a finished response (QuestionnaireResponse.status).
_FINISHED = frozenset({"completed", "amended"})


def _unknown_value_set(url: str) -> set[tuple[str | None, str]] | None:
    return None


def validate_response(
    qr: dict[str, Any],
    questionnaire: dict[str, Any],
    *,
    value_set_codes: ValueSetCodes = _unknown_value_set,
) -> list[Issue]:
    """``value_set_codes(canonical)`` gives the (system, code) pairs of an expanded ValueSet, or None."""
    index = QuestionnaireIndex(questionnaire)
    issues = list(index.issues)
    root = build_tree(qr, questionnaire)
    walk = _Walk(
        index=index,
        issues=issues,
        enablement=Enablement(qr, root, set(index.parent_of), issues),
        answers=AnswerChecker(questionnaire, value_set_codes),
        finished=qr.get("status") in _FINISHED,
    )
    walk.container(root, child_defs(questionnaire), root.children_at(None), root.path)
    return issues


def _has_value(answer: JsonDict) -> bool:
    return value_x(answer, "value") is not None


class _Walk:
    def __init__(
        self,
        *,
        index: QuestionnaireIndex,
        issues: list[Issue],
        enablement: Enablement,
        answers: AnswerChecker,
        finished: bool,
    ) -> None:
        self.index = index
        self.issues = issues
        self.enablement = enablement
        self.answers = answers
        self.finished = finished

    def add(self, code: str, link_id: Any, message: str, path: str, severity: Any = "error") -> None:
        label = f"linkId '{link_id}'" if link_id is not None else "item"
        self.issues.append(
            Issue(code=code, severity=severity, diagnostics=f"{label}: {message}", expression=(path,))
        )

    def container(self, owner: Node, defs: list[JsonDict], children: list[Node], path: str) -> None:
        """Items under one parent (the response, a group, or one answer): placement, order, cardinality."""
        position: dict[Any, int] = {}
        for i, defn in enumerate(defs):
            position.setdefault(defn.get("linkId"), i)
        furthest, seen = -1, set[Any]()
        for child in children:
            if child.defn is None:
                self.misplaced(child)
                continue
            link_id, pos = child.link_id, position[child.link_id]
            if pos < furthest:
                after = defs[furthest].get("linkId")
                self.add(
                    "structure",
                    link_id,
                    f"item is out of order (the Questionnaire puts it before '{after}')",
                    child.path,
                )
            elif link_id in seen and not is_repeating_group(child.defn):
                self.add(
                    "structure",
                    link_id,
                    "item appears more than once but does not repeat "
                    "(repeating questions take several answers, not several items)",
                    child.path,
                )
            seen.add(link_id)
            furthest = max(furthest, pos)
            self.item(child)
        for i, defn in enumerate(defs):
            if position.get(defn.get("linkId")) == i:  # a duplicate linkId (que-2) is checked once
                self.occurrences(owner, defn, [c for c in children if c.defn is defn], path)

    def misplaced(self, child: Node) -> None:
        link_id = child.link_id
        if not isinstance(link_id, str):
            self.add("structure", None, "item has no linkId", child.path)
        elif link_id in self.index.parent_of:
            home = self.index.parent_of[link_id]
            where = f"under '{home}'" if home is not None else "at the top level"
            self.add(
                "structure",
                link_id,
                f"item is not allowed here; the Questionnaire places it {where}",
                child.path,
            )
        else:
            self.add("structure", link_id, "linkId is not defined in the Questionnaire", child.path)

    def occurrences(self, owner: Node, defn: JsonDict, instances: list[Node], path: str) -> None:
        link_id = defn.get("linkId")
        if is_repeating_group(defn):
            most, least = extension_value(defn, MAX_OCCURS), extension_value(defn, MIN_OCCURS)
            if isinstance(most, int) and len(instances) > most:
                self.add(
                    "structure",
                    link_id,
                    f"group repeats {len(instances)} times; maxOccurs is {most}",
                    instances[most].path,
                )
            if (
                self.finished
                and isinstance(least, int)
                and 0 < len(instances) < least  # none at all is the "required" check below
                and self.enablement.enabled(owner)
            ):
                self.add(
                    "required",
                    link_id,
                    f"group repeats {len(instances)} times; minOccurs is {least}",
                    instances[0].path,
                )
        if (
            self.finished
            and defn.get("required")
            and not instances
            and self.enablement.enabled_if_present(defn, owner, path)
        ):
            self.add("required", link_id, "required item is missing", path)

    def item(self, node: Node) -> None:
        defn = node.defn
        assert defn is not None
        link_id, item = node.link_id, node.item
        text = item.get("text")
        if text is not None and defn.get("text") is not None and text != defn.get("text"):
            self.add(
                "structure",
                link_id,
                f"text {text!r} differs from the Questionnaire's {defn['text']!r}",
                node.path,
                "warning",
            )
        if is_question(defn):
            self.question(node, defn)
            return
        if node.answers():
            self.add("structure", link_id, f"a {defn.get('type')} item cannot have answers", node.path)
        self.container(node, child_defs(defn), node.children_at(None), node.path)
        if self.finished and defn.get("required") and self.enablement.enabled(node):
            answered = any(_has_value(a) for d in node.descendants() for a in d.answers())
            if not answered:
                self.add("required", link_id, "required group has no answered items", node.path)

    def question(self, node: Node, defn: JsonDict) -> None:
        link_id, answers = node.link_id, node.answers()
        if node.item.get("item"):
            if answers:
                self.add(
                    "invariant",
                    link_id,
                    "qrs-1: Nested item can't be beneath both item and answer",
                    node.path,
                )
            else:
                self.add("structure", link_id, "a question's child items belong under answer.item", node.path)
        self.answer_count(node, defn, len(answers))
        if answers:
            warning = self.answers.value_set_warning(defn, node.path)
            if warning is not None:
                self.issues.append(warning)
        check = self.answers.check(defn, node.path)
        for j, answer in enumerate(answers):
            self.issues.extend(check(j, answer))
            self.container(node, child_defs(defn), node.children_at(j), f"{node.path}.answer[{j}]")
        enabled = self.enablement.enabled(node)
        if answers and not enabled:
            self.add(
                "business-rule",
                link_id,
                "item is disabled by its enableWhen conditions but has answers",
                node.path,
            )
        if self.finished and defn.get("required") and enabled and not any(_has_value(a) for a in answers):
            self.add("required", link_id, "required question has no answer", node.path)

    def answer_count(self, node: Node, defn: JsonDict, count: int) -> None:
        link_id = node.link_id
        if defn.get("repeats") is not True:
            if count > 1:
                self.add("structure", link_id, f"question does not repeat but has {count} answers", node.path)
            return
        most, least = extension_value(defn, MAX_OCCURS), extension_value(defn, MIN_OCCURS)
        if isinstance(most, int) and count > most:
            self.add(
                "structure",
                link_id,
                f"the maximum number of answers is {most} but this has {count}",
                node.path,
            )
        if self.finished and isinstance(least, int) and 0 < count < least and self.enablement.enabled(node):
            self.add(
                "required",
                link_id,
                f"the minimum number of answers is {least} but this has {count}",
                node.path,
            )
