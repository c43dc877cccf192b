"""Security labels a client may not set on clinical records.

``meta.security`` is kept as the client sent it: labels such as ``v3-Confidentiality#R``
(restricted) or ``v3-ActCode#HIV`` tell receiving systems to take more care, and the hub
passes them on to partners. The one label that does the opposite is refused:
``v3-Confidentiality#U`` (unrestricted, "not considered sensitive") on a clinical record,
which would invite a partner system to handle special-category data (mental health,
HIV status) as public (http://hl7.org/fhir/R4/security-labels.html#confidentiality).
"""

from __future__ import annotations

from typing import Any

from service.errors import Issue
from service.rest import registry

_CONFIDENTIALITY = frozenset(
    {
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "urn:oid:2.16.840.1.113883.5.25",  # the same code system by its OID
    }
)
_CLINICAL = frozenset(name for name, info in registry.TYPES.items() if info.kind == "clinical")


def _unrestricted(resource: dict[str, Any], path: str) -> list[Issue]:
    if resource.get("resourceType") not in _CLINICAL:
        return []
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    return [
        Issue(
            code="business-rule",
            diagnostics=f"{path}.meta.security[{i}]: a clinical record may not be labelled unrestricted "
            "(v3-Confidentiality#U); omit the label or use a stricter one",
            expression=(f"{path}.meta.security[{i}]",),
        )
        for i, label in enumerate(labels if isinstance(labels, list) else [])
        if isinstance(label, dict) and label.get("system") in _CONFIDENTIALITY and label.get("code") == "U"
    ]


def unrestricted_label_issues(resource: dict[str, Any]) -> list[Issue]:
    """The resource itself and its contained resources."""
    path = str(resource.get("resourceType"))
    issues = _unrestricted(resource, path)
    for i, item in enumerate(resource.get("contained") or []):
        if isinstance(item, dict):
            issues.extend(_unrestricted(item, f"{path}.contained[{i}]"))
    return issues
