"""FHIR JSON responses: media type, ETag, Last-Modified, Location, Prefer."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import orjson
from fastapi.responses import Response
from starlette.background import BackgroundTask

from service.errors import Issue, operation_outcome
from service.rest.prefer import return_preference
from service.storage.resources import Stored

FHIR_JSON = "application/fhir+json"


class FhirResponse(Response):
    media_type = FHIR_JSON

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)
        if content is None and "content-type" in self.headers:
            # No body (204, 304, Prefer: return=minimal), so no Content-Type claiming one.
            del self.headers["content-type"]

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def version_headers(stored: Stored | None) -> dict[str, str]:
    if stored is None:
        return {}
    return {
        "ETag": f'W/"{stored.version_id}"',
        "Last-Modified": _http_date(stored.last_updated.replace(microsecond=0)),
    }


@lru_cache(maxsize=256)
def _http_date(moment: datetime) -> str:
    # An HTTP-date has whole seconds; formatting one was 3 % of a read, and reads repeat resources.
    return format_datetime(moment, usegmt=True)


def respond(
    status: int,
    body: dict[str, Any] | None,
    *,
    stored: Stored | None = None,
    headers: dict[str, str] | None = None,
    prefer: str | None = None,
) -> FhirResponse:
    """Apply ``Prefer: return=`` (http://hl7.org/fhir/R4/http.html#ops) to a write's result."""
    all_headers = version_headers(stored) | (headers or {})
    wanted = return_preference(prefer)
    if wanted == "minimal" and status in (200, 201):
        return FhirResponse(None, status_code=status, headers=all_headers)
    if wanted == "OperationOutcome" and status in (200, 201):
        outcome = operation_outcome(
            [Issue(code="informational", severity="information", diagnostics=f"Done: HTTP {status}")]
        )
        return FhirResponse(outcome, status_code=status, headers=all_headers)
    return FhirResponse(body, status_code=status, headers=all_headers)
