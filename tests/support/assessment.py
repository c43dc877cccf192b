"""The shipped needs assessment, and answers to its coded items, for tests."""

from __future__ import annotations

from typing import Any

import fhir_profiles as fp
from service.assessment._items import walk_items

QUESTIONNAIRE = fp.load_by_url(fp.ASSESSMENT_URL)
CANONICAL = f"{fp.ASSESSMENT_URL}|{fp.ASSESSMENT_VERSION}"
ITEMS = {item["linkId"]: item for item in walk_items(QUESTIONNAIRE["item"])}


def coded(link_id: str, ordinal: int) -> dict[str, Any]:
    """The answer to a coded item whose option has this ordinal value."""
    for option in ITEMS[link_id]["answerOption"]:
        coding = option["valueCoding"]
        if coding["extension"][0]["valueDecimal"] == ordinal:
            return {"valueCoding": {k: v for k, v in coding.items() if k != "extension"}}
    raise AssertionError(f"{link_id} has no option {ordinal}")
