"""``_summary`` and ``_elements`` (http://hl7.org/fhir/R4/search.html#summary).

Subsetting is top-level: summary elements come from the R4 definitions (the
``isSummary`` flags carried by the models); nested elements are kept whole.
Subsetted resources are tagged SUBSETTED, as the spec requires.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from service.fhir.models import model_class

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
_ALWAYS = frozenset({"resourceType", "id", "meta"})


@lru_cache(maxsize=64)
def summary_elements(resource_type: str) -> frozenset[str]:
    names = set(_ALWAYS)
    for name, field in model_class(resource_type).model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and (
            extra.get("summary_element_property") or extra.get("element_required")
        ):
            names.add(field.alias or name)
    return frozenset(names)


def _tagged(resource: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    meta = dict(kept.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    kept["meta"] = meta
    return kept


def subset(resource: dict[str, Any], summary: str | None, elements: list[str]) -> dict[str, Any]:
    if summary == "data":
        return _tagged(resource, {k: v for k, v in resource.items() if k != "text"})
    if summary == "true":
        keep = summary_elements(resource["resourceType"])
    elif summary == "text":
        keep = frozenset({"text", "status"}) | _ALWAYS
    elif elements:
        keep = frozenset(elements) | _ALWAYS
    else:
        return resource
    return _tagged(resource, {k: v for k, v in resource.items() if k in keep})
