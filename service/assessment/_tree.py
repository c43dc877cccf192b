"""The QuestionnaireResponse item tree, each item paired with its Questionnaire definition.

Group children sit under ``item``; a question's children sit under ``answer[n].item``
(http://hl7.org/fhir/R4/questionnaireresponse.html#notes). Items are matched to definitions
only among the children the Questionnaire declares for that parent, so a known linkId in the
wrong place gets no definition and is reported as misplaced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from service.assessment._questionnaire import JsonDict, child_defs, is_question


@dataclass(eq=False)
class Node:
    item: JsonDict
    defn: JsonDict | None
    path: str
    parent: Node | None
    # Index of the parent's answer holding this item; None when under the parent's ``item``.
    answer_index: int | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def link_id(self) -> Any:
        return self.item.get("linkId")

    def answers(self) -> list[JsonDict]:
        return [a for a in self.item.get("answer", []) if isinstance(a, dict)]

    def children_at(self, answer_index: int | None) -> list[Node]:
        return [c for c in self.children if c.answer_index == answer_index]

    def descendants(self) -> Iterator[Node]:
        for child in self.children:
            yield child
            yield from child.descendants()


def _attach(parent: Node, items: Any, path: str, answer_index: int | None) -> None:
    if not isinstance(items, list):
        return
    by_link_id: dict[Any, JsonDict] = {}
    for defn in child_defs(parent.defn):
        by_link_id.setdefault(defn.get("linkId"), defn)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        node = Node(item, by_link_id.get(item.get("linkId")), f"{path}.item[{i}]", parent, answer_index)
        parent.children.append(node)
        _expand(node)


def _expand(node: Node) -> None:
    # Unknown items are reported once; their subtrees cannot be checked against anything.
    if node.defn is None:
        return
    if is_question(node.defn):
        # Children placed directly under a question's ``item`` are misplaced (reported by the
        # validator), so they are not attached.
        for j, answer in enumerate(node.item.get("answer", [])):
            if isinstance(answer, dict):
                _attach(node, answer.get("item"), f"{node.path}.answer[{j}]", j)
    else:
        _attach(node, node.item.get("item"), node.path, None)


def build_tree(qr: JsonDict, questionnaire: JsonDict) -> Node:
    """The root stands for the QuestionnaireResponse; its definition is the Questionnaire."""
    root = Node(qr, questionnaire, "QuestionnaireResponse", None)
    _attach(root, qr.get("item"), root.path, None)
    return root
