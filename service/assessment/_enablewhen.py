"""Whether an item is enabled: enableWhen, enableBehavior and SDC enableWhenExpression.

R4: http://hl7.org/fhir/R4/questionnaire-definitions.html#Questionnaire.item.enableWhen
SDC: http://hl7.org/fhir/uv/sdc/expressions.html#enableWhenExpression

- An item inside a disabled item is disabled.
- enableWhen.question names "the nearest question occurrence reachable by tracing first the
  ancestor axis and then the preceding axis and then the following axis": we search outwards
  from the item's parent, one ancestor at a time, so a question in the same repeating-group
  instance wins over the same linkId elsewhere.
- A disabled question counts as unanswered ("the logic should proceed as though the item is not
  valued"). Reference loops are cut by treating an item being evaluated as enabled.
"""

from __future__ import annotations

from typing import Any

from fhirpathpy import evaluate
from fhirpathpy.models import models

from service.assessment import _values
from service.assessment._questionnaire import ENABLE_WHEN_EXPRESSION, JsonDict, extension_value, value_x
from service.assessment._tree import Node
from service.errors import Issue

_ORDERINGS = {">": (1,), "<": (-1,), ">=": (0, 1), "<=": (-1, 0)}


class Enablement:
    def __init__(self, qr: JsonDict, root: Node, known_link_ids: set[str], issues: list[Issue]) -> None:
        self._qr = qr
        self._root = root
        self._known = known_link_ids
        self._issues = issues
        self._memo: dict[int, bool] = {}
        self._virtual: dict[tuple[int, str], bool] = {}
        self._pending: set[int] = set()

    def enabled(self, node: Node) -> bool:
        if node.parent is None or node.defn is None:
            return True
        key = id(node)
        if key in self._memo:
            return self._memo[key]
        if key in self._pending:
            return True
        self._pending.add(key)
        try:
            result = self.enabled(node.parent) and self._own(node.defn, node.parent, node.item, node.path)
        finally:
            self._pending.discard(key)
        self._memo[key] = result
        return result

    def enabled_if_present(self, defn: JsonDict, parent: Node, path: str) -> bool:
        """For an item the response leaves out: would it be enabled under ``parent``?"""
        key = (id(parent), str(defn.get("linkId")))
        if key not in self._virtual:
            self._virtual[key] = self.enabled(parent) and self._own(defn, parent, parent.item, path)
        return self._virtual[key]

    def _own(self, defn: JsonDict, parent: Node, context: JsonDict, path: str) -> bool:
        result = True
        expression = extension_value(defn, ENABLE_WHEN_EXPRESSION)
        if isinstance(expression, dict) and isinstance(expression.get("expression"), str):
            result = self._expression(defn, expression["expression"], context, path)
        conditions = [c for c in defn.get("enableWhen", []) if isinstance(c, dict)]
        if conditions:
            outcomes = [self._condition(defn, c, parent, path) for c in conditions]
            # enableBehavior is required with several conditions (que-12); absent, we take "all".
            combined = any(outcomes) if defn.get("enableBehavior") == "any" else all(outcomes)
            result = result and combined
        return result

    def _expression(self, defn: JsonDict, expression: str, context: JsonDict, path: str) -> bool:
        try:
            outcome = evaluate(self._qr, expression, {"resource": self._qr, "context": context}, models["r4"])
        except Exception as exc:  # fhirpathpy raises assorted types for bad or unsupported expressions
            self._warn(defn, path, f"enableWhenExpression could not be evaluated ({exc}); treated as enabled")
            return True
        if outcome in ([], [False]):
            return False
        if outcome == [True]:
            return True
        self._warn(defn, path, f"enableWhenExpression gave {outcome!r}, not a boolean; treated as enabled")
        return True

    def _condition(self, defn: JsonDict, condition: JsonDict, parent: Node, path: str) -> bool:
        question = condition.get("question")
        operator = condition.get("operator")
        expected = value_x(condition, "answer")
        if not isinstance(question, str) or question not in self._known:
            self._warn(defn, path, f"enableWhen refers to unknown question '{question}'")
        values = [
            v
            for target in self._resolve(question, parent)
            if self.enabled(target)
            for v in _answer_values(target)
        ]
        if operator == "exists":
            wanted = expected[1] if expected is not None else True
            return bool(values) is bool(wanted)
        if expected is None:
            self._warn(defn, path, f"enableWhen on '{question}' has no answer[x]")
            return True
        key, want = expected

        def temporal(k: str) -> bool:
            return _values.is_temporal_key(k) or _values.is_temporal_key(key)

        if operator in ("=", "!="):
            hit = any(_values.same(val, want, temporal=temporal(k)) for k, val in values)
            return hit if operator == "=" else not hit
        if operator in _ORDERINGS:
            return any(
                _values.compare(val, want, temporal=temporal(k)) in _ORDERINGS[operator] for k, val in values
            )
        self._warn(defn, path, f"enableWhen operator '{operator}' is not supported")
        return True

    def _resolve(self, question: Any, parent: Node) -> list[Node]:
        level: Node | None = parent
        while level is not None:
            if level.parent is not None and level.link_id == question:
                return [level]
            found = [n for n in level.descendants() if n.link_id == question and n.defn is not None]
            if found:
                return found
            level = level.parent
        return []

    def _warn(self, defn: JsonDict, path: str, message: str) -> None:
        issue = Issue(
            code="business-rule",
            severity="warning",
            diagnostics=f"linkId '{defn.get('linkId')}': {message}",
            expression=(path,),
        )
        if issue not in self._issues:
            self._issues.append(issue)


def _answer_values(node: Node) -> list[tuple[str, Any]]:
    found = (value_x(a, "value") for a in node.answers())
    return [f for f in found if f is not None]
