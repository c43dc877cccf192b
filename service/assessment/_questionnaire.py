"""Read-only helpers over a Questionnaire's item tree and its extensions.

http://hl7.org/fhir/R4/questionnaire.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from service.errors import Issue

JsonDict = dict[str, Any]

MIN_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-minOccurs"
MAX_OCCURS = "http://hl7.org/fhir/StructureDefinition/questionnaire-maxOccurs"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
MIN_LENGTH = "http://hl7.org/fhir/StructureDefinition/minLength"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
ENABLE_WHEN_EXPRESSION = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"
)

NON_QUESTION_TYPES = frozenset({"group", "display"})


def child_defs(defn: JsonDict | None) -> list[JsonDict]:
    if defn is None:
        return []
    return [d for d in defn.get("item", []) if isinstance(d, dict)]


def value_x(element: JsonDict, prefix: str) -> tuple[str, Any] | None:
    """The (key, value) of a choice element such as ``value[x]`` or ``answer[x]``."""
    for key, val in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key, val
    return None


def extension_value(defn: JsonDict, url: str) -> Any:
    for ext in defn.get("extension", []):
        if isinstance(ext, dict) and ext.get("url") == url:
            found = value_x(ext, "value")
            return None if found is None else found[1]
    return None


def is_question(defn: JsonDict) -> bool:
    return defn.get("type") not in NON_QUESTION_TYPES


def is_repeating_group(defn: JsonDict) -> bool:
    return defn.get("type") == "group" and defn.get("repeats") is True


def _walk(items: list[JsonDict], path: str, parent: str | None) -> Iterator[tuple[JsonDict, str, str | None]]:
    for i, defn in enumerate(items):
        here = f"{path}.item[{i}]"
        yield defn, here, parent
        yield from _walk(child_defs(defn), here, defn.get("linkId"))


class QuestionnaireIndex:
    """Where each linkId lives, plus the que-2 (unique linkId) check."""

    def __init__(self, questionnaire: JsonDict) -> None:
        self.parent_of: dict[str, str | None] = {}
        self.issues: list[Issue] = []
        for defn, path, parent in _walk(child_defs(questionnaire), "Questionnaire", None):
            link_id = defn.get("linkId")
            if not isinstance(link_id, str):
                self.issues.append(
                    Issue(
                        code="structure", diagnostics="Questionnaire item has no linkId", expression=(path,)
                    )
                )
                continue
            if link_id in self.parent_of:
                # que-2: "The link ids for groups and questions must be unique within the questionnaire"
                self.issues.append(
                    Issue(
                        code="invariant",
                        diagnostics=f"linkId '{link_id}': que-2 violated, linkId is not unique in the "
                        "Questionnaire",
                        expression=(path,),
                    )
                )
                continue
            self.parent_of[link_id] = parent
