"""Typed errors, each with an HTTP status and an OperationOutcome issue code.

Domain code raises these; one handler in ``service.api.errors`` renders them.
Issue codes: http://hl7.org/fhir/R4/valueset-issue-type.html
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Severity = Literal["fatal", "error", "warning", "information"]


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue."""

    code: str
    diagnostics: str
    severity: Severity = "error"
    expression: tuple[str, ...] = ()

    def to_fhir(self) -> dict[str, Any]:
        out: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def operation_outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


@dataclass
class FhirError(Exception):
    """Base error: subclasses fix the HTTP status and default issue code."""

    diagnostics: str
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    status: ClassVar[int] = 500
    code: ClassVar[str] = "exception"

    def __post_init__(self) -> None:
        super().__init__(self.diagnostics)

    def outcome_issues(self) -> list[Issue]:
        return self.issues or [Issue(code=self.code, diagnostics=self.diagnostics)]

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.outcome_issues())


class BadRequest(FhirError):
    status = 400
    code = "invalid"


class NotSupported(FhirError):
    status = 400
    code = "not-supported"


class Unauthenticated(FhirError):
    status = 401
    code = "login"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class Conflict(FhirError):
    status = 409
    code = "conflict"


class Gone(FhirError):
    status = 410
    code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    """Valid FHIR that breaks a profile or business rule."""

    status = 422
    code = "processing"


class BusinessRuleViolation(Unprocessable):
    code = "business-rule"


class TooManyRequests(FhirError):
    status = 429
    code = "throttled"


class ServiceUnavailable(FhirError):
    """The hub cannot reach its database right now: the client may retry (with ``Retry-After``)."""

    status = 503
    code = "transient"
