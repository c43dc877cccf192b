"""Wraparound's conformance resources (JSON under ``data/``) and a loader for them.

Canonical URLs live under https://wraparound.org.uk/fhir/: they are fixed identifiers, not addresses.
Files are read through ``importlib.resources`` so the package works when installed from a wheel.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

BASE = "https://wraparound.org.uk/fhir"

ASSESSMENT_URL = f"{BASE}/Questionnaire/wellbeing-needs-assessment"
# The current version of the assessment: what the hub's own callers (tests, the demo, examples) name in
# ``QuestionnaireResponse.questionnaire``. Every published version stays loadable and keeps validating the
# responses that name it (ASSESSMENT_VERSIONS, oldest first); all share the same linkIds.
ASSESSMENT_VERSION = "1.1.0"
ASSESSMENT_VERSIONS = ("1.0.0", "1.1.0")

SERVICE_CATEGORY_SYSTEM = f"{BASE}/CodeSystem/service-category"
NEED_SYSTEM = f"{BASE}/CodeSystem/need"
NEED_URGENCY_SYSTEM = f"{BASE}/CodeSystem/need-urgency"
TASK_BUSINESS_STATUS_SYSTEM = f"{BASE}/CodeSystem/task-business-status"
ENDPOINT_CONNECTION_TYPE_SYSTEM = f"{BASE}/CodeSystem/endpoint-connection-type"
CONSENT_MODEL_SYSTEM = f"{BASE}/CodeSystem/consent-model"
DATA_ORIGIN_SYSTEM = f"{BASE}/CodeSystem/data-origin"
PEER_SUPPORT_OUTCOME_SYSTEM = f"{BASE}/CodeSystem/peer-support-outcome"
POZQOL_RESPONSE_SYSTEM = f"{BASE}/CodeSystem/pozqol-response"
ASSESSMENT_INSTRUMENT_SYSTEM = f"{BASE}/CodeSystem/assessment-instrument"
ASSESSMENT_SCORE_SYSTEM = f"{BASE}/CodeSystem/assessment-score"
ASSESSMENT_BAND_SYSTEM = f"{BASE}/CodeSystem/assessment-band"
FLAG_CODE_SYSTEM = f"{BASE}/CodeSystem/flag-code"

CONSENT_MODEL_URL = f"{BASE}/StructureDefinition/consent-model"
NEED_TO_SERVICE_CATEGORY_URL = f"{BASE}/ConceptMap/need-to-service-category"
SERVICE_CATEGORY_TO_SNOMED_URL = f"{BASE}/ConceptMap/service-category-to-snomed"
# Which assessment items each kind of partner service sees (not a FHIR resource: see README).
MINIMISATION_POLICY_URL = f"{BASE}/minimisation-policy/wellbeing-needs-assessment"

# Identifier system of directory entries (Organization, HealthcareService): a stable slug per entry,
# so the demo directory can be loaded again without duplicates (conditional update on identifier).
DIRECTORY_IDENTIFIER_SYSTEM = f"{BASE}/Id/directory"
DEMO_TAG = {"system": DATA_ORIGIN_SYSTEM, "code": "demo"}

_DEMO_DIR = "demo"
_MINIMISATION_POLICY_FILE = "minimisation-policy.json"


def _data() -> Traversable:
    return files(__name__).joinpath("data")


def _read(entry: Traversable) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    return loaded


def load_conformance() -> list[dict[str, Any]]:
    """Every conformance resource (all of data/ except demo/), in file-name order; fresh copies."""
    entries = sorted(
        (
            e
            for e in _data().iterdir()
            if e.is_file() and e.name.endswith(".json") and e.name != _MINIMISATION_POLICY_FILE
        ),
        key=lambda e: e.name,
    )
    return [_read(e) for e in entries]


def _version_key(resource: dict[str, Any]) -> tuple[tuple[int, int | str], ...]:
    # Numeric part by part (1.10.0 > 1.9.0), as service.assessment.canonical compares stored versions.
    version = str(resource.get("version") or "")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-+]", version) if p)


def load_by_url(url: str) -> dict[str, Any]:
    """The conformance resource with this canonical URL; KeyError if none.

    ``url|version`` names exactly that version; a bare URL means the latest ``active`` version (the rule
    the server applies to stored definitions, http://hl7.org/fhir/R4/references.html#canonical).
    """
    wanted, bar, version = url.partition("|")
    found = [r for r in load_conformance() if r.get("url") == wanted]
    if bar and version:
        found = [r for r in found if r.get("version") == version]
    else:
        found = [r for r in found if r.get("status") == "active"] or found
    if not found:
        raise KeyError(url)
    return max(found, key=_version_key)


def load_minimisation_policy() -> dict[str, Any]:
    """The per-service-category minimisation policy for the needs assessment; a fresh copy."""
    return _read(_data().joinpath(_MINIMISATION_POLICY_FILE))


def load_demo_directory() -> dict[str, Any]:
    """The fictional London demo directory: a transaction Bundle of conditional updates."""
    return _read(_data().joinpath(_DEMO_DIR, "demo-directory.json"))


__all__ = [
    "ASSESSMENT_BAND_SYSTEM",
    "ASSESSMENT_INSTRUMENT_SYSTEM",
    "ASSESSMENT_SCORE_SYSTEM",
    "ASSESSMENT_URL",
    "ASSESSMENT_VERSION",
    "ASSESSMENT_VERSIONS",
    "BASE",
    "CONSENT_MODEL_SYSTEM",
    "CONSENT_MODEL_URL",
    "DATA_ORIGIN_SYSTEM",
    "DEMO_TAG",
    "DIRECTORY_IDENTIFIER_SYSTEM",
    "ENDPOINT_CONNECTION_TYPE_SYSTEM",
    "FLAG_CODE_SYSTEM",
    "MINIMISATION_POLICY_URL",
    "NEED_SYSTEM",
    "NEED_TO_SERVICE_CATEGORY_URL",
    "NEED_URGENCY_SYSTEM",
    "PEER_SUPPORT_OUTCOME_SYSTEM",
    "POZQOL_RESPONSE_SYSTEM",
    "SERVICE_CATEGORY_SYSTEM",
    "SERVICE_CATEGORY_TO_SNOMED_URL",
    "TASK_BUSINESS_STATUS_SYSTEM",
    "load_by_url",
    "load_conformance",
    "load_demo_directory",
    "load_minimisation_policy",
]
