"""Rendering: the Jinja2 environment (autoescaped), and what every page's template receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from service.web import labels

# Autoescaping for every template whatever its file name (Starlette's default escapes only .html, .htm
# and .xml): every value a page shows (names, reasons, answers) is text, never markup.
TEMPLATES = Jinja2Templates(
    env=Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)
)
TEMPLATES.env.globals.update(prefix="/app", status_labels=labels.STATUS)


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(request, template, context or {}, status_code=status)
