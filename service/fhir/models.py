"""The one import surface for FHIR models (docs/adr/0001-fhir-version.md).

Wraparound speaks FHIR R4 (4.0.1). fhir.resources ships R5 at its top level and R4B
beside it; for the resource types served here R4B is structurally a superset of R4,
so R4B models validate R4 content. The differences that matter are checked in
``service.fhir.r4_rules`` (elements R4B added that R4 lacks are refused there).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

FHIR_VERSION = "4.0.1"

__all__ = ["FHIR_VERSION", "FHIRAbstractModel", "ValidationError", "model_class"]


@lru_cache(maxsize=64)
def model_class(resource_type: str) -> type[FHIRAbstractModel]:
    return get_fhir_model_class(resource_type)


def validate(resource: dict[str, Any]) -> FHIRAbstractModel:
    """Structural validation; raises pydantic ``ValidationError``."""
    return model_class(str(resource["resourceType"])).model_validate(resource)
