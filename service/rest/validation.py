"""The write-side validation pipeline.

Steps run in order and each returns *all* the issues it finds; structural problems
stop the pipeline (400), later steps (profiles, business rules) are reported
together (422). Profile validation slots in as another step (ROADMAP.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import BadRequest, Issue, Unprocessable
from service.fhir.ids import is_id
from service.fhir.models import ValidationError, validate
from service.fhir.modifiers import unknown_modifier_extensions
from service.fhir.narrative import narrative_problems
from service.fhir.primitives import primitive_problems
from service.rest.context import Context
from service.rest.security_labels import unrestricted_label_issues
from service.storage.resources import Stored

# A business-rule step: (context, new content, previous version or None) -> issues.
RuleStep = Callable[[Context, dict[str, Any], Stored | None], list[Issue]]

_RULES: dict[str, list[RuleStep]] = {}
# Types with a step that may wait on the network (an Endpoint's address is resolved by DNS).
_NETWORK: set[str] = set()


def register_rule(resource_type: str, step: RuleStep, *, network: bool = False) -> None:
    """``network``: the step may wait on the network, so writes of the type never run on the
    event loop (api/hotpath.py, ADR 0020)."""
    _RULES.setdefault(resource_type, []).append(step)
    if network:
        _NETWORK.add(resource_type)


def waits_on_network(resource_type: str) -> bool:
    return resource_type in _NETWORK


def rules_for(resource_type: str) -> list[RuleStep]:
    return _RULES.get(resource_type, [])


def check_envelope(body: Any, resource_type: str, resource_id: str | None) -> dict[str, Any]:
    """resourceType and id agree with the URL (http://hl7.org/fhir/R4/http.html#update)."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object holding a FHIR resource")
    actual = body.get("resourceType")
    if actual != resource_type:
        raise BadRequest(
            f"resourceType '{actual}' does not match the URL's '{resource_type}'",
            issues=[
                Issue(
                    code="invalid",
                    diagnostics="resourceType does not match the URL",
                    expression=("resourceType",),
                )
            ],
        )
    if "id" in body and not is_id(body["id"]):
        # A create ignores the id it is sent (http://hl7.org/fhir/R4/http.html#create), but one that is not
        # a FHIR id (a string of 1-64 letters, digits, "-" and ".") makes the resource invalid, and an
        # invalid resource is refused, as the OpenAPI document's schema says.
        problem = "Resource.id must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'"
        raise BadRequest(
            problem, issues=[Issue(code="invalid", diagnostics=problem, expression=(f"{resource_type}.id",))]
        )
    if resource_id is not None:
        if "id" not in body:
            raise BadRequest(
                "An update must carry the resource id",
                issues=[
                    Issue(
                        code="required",
                        diagnostics="Resource.id is missing",
                        expression=(f"{resource_type}.id",),
                    )
                ],
            )
        if body["id"] != resource_id:
            raise BadRequest(
                f"Resource id '{body['id']}' does not match the URL's id '{resource_id}'",
                issues=[
                    Issue(
                        code="invalid",
                        diagnostics="id does not match the URL",
                        expression=(f"{resource_type}.id",),
                    )
                ],
            )
    return body


def structural_issues(resource: dict[str, Any]) -> list[Issue]:
    try:
        validate(resource)
    except ValidationError as exc:
        return [_issue_from_pydantic(resource["resourceType"], err) for err in exc.errors()]
    except (KeyError, ValueError, TypeError):
        # fhir.resources raises these for an unknown resourceType inside contained or Bundle.entry.
        return [
            Issue(code="structure", diagnostics="A nested resource has an unknown or missing resourceType")
        ]
    # The models coerce lax JSON and skip required bindings; the stored JSON must be exact.
    return [
        Issue(code=code, diagnostics=f"{path}: {message}", expression=(path,))
        for path, code, message in sorted(primitive_problems(resource))
    ]


def _issue_from_pydantic(resource_type: str, err: Any) -> Issue:
    path = resource_type
    for part in err.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    kind = err.get("type", "")
    code = "structure" if kind == "extra_forbidden" else "value"
    msg = "Unknown element" if kind == "extra_forbidden" else str(err.get("msg", "invalid value"))
    # Never echo the offending value: it may be special-category data.
    return Issue(code=code, diagnostics=f"{path}: {msg}", expression=(path,))


def content_issues(resource: dict[str, Any]) -> list[Issue]:
    """Valid JSON the hub still refuses (422): narrative markup that is not inert XHTML
    (http://hl7.org/fhir/R4/narrative.html#xhtml), modifier extensions it does not
    understand (http://hl7.org/fhir/R4/extensibility.html#modifierExtension) and clinical
    records labelled unrestricted (service.rest.security_labels)."""
    issues = [
        Issue(code="invariant", diagnostics=f"{path}: {message}", expression=(path,))
        for path, message in narrative_problems(resource)
    ]
    issues.extend(
        Issue(
            code="not-supported",
            diagnostics=f"{path}: a modifier extension this server does not understand; it must reject it",
            expression=(path,),
        )
        for path in unknown_modifier_extensions(resource)
    )
    issues.extend(unrestricted_label_issues(resource))
    return issues


def validate_write(ctx: Context, resource_type: str, resource: dict[str, Any], old: Stored | None) -> None:
    issues = structural_issues(resource)
    if issues:
        raise BadRequest(f"{resource_type} is not valid FHIR R4", issues=issues)
    issues = content_issues(resource)
    for step in rules_for(resource_type):
        issues.extend(step(ctx, resource, old))
    errors = [i for i in issues if i.severity in ("error", "fatal")]
    if errors:
        raise Unprocessable(errors[0].diagnostics, issues=issues)
