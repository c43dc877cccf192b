"""Fixtures of the storage tests."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


@pytest.fixture
def raw_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each statement given to psycopg's ``RawCursor`` (storage/driver.rows ``raw=``), as written."""
    seen: list[str] = []

    class Recording(psycopg.RawCursor[Any]):
        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            seen.append(query)
            return super().execute(query, params, **kwargs)

    monkeypatch.setattr(psycopg, "RawCursor", Recording)
    return seen
