"""The checked-in OpenAPI document (``openapi/openapi.json``), generated from the app.

CI regenerates it and fails when the file differs, so the published description can
never drift from the routes. The app is built but never started: ``app.openapi()``
needs the routers, not the lifespan (no migrations, no database connection).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("openapi") / "openapi.json"


def generate() -> dict[str, Any]:
    from service.app import create_app
    from service.delivery.secrets import generate_key
    from service.settings import Settings

    app = create_app(Settings(database_url="sqlite://", secret_key=generate_key()))
    try:
        return app.openapi()
    finally:
        app.state.database.dispose()


def render(document: dict[str, Any]) -> str:
    # Sorted keys and a trailing newline: stable bytes, so a diff means a real change.
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Outcome:
    path: Path
    changed: bool


def write(path: Path = DEFAULT_PATH) -> Outcome:
    text = render(generate())
    changed = not path.exists() or path.read_text(encoding="utf-8") != text
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Outcome(path, changed)


def check(path: Path = DEFAULT_PATH) -> Outcome:
    text = render(generate())
    current = path.read_text(encoding="utf-8") if path.exists() else None
    return Outcome(path, current != text)
