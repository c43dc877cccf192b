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


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each time psycopg's pipeline mode is entered."""
    entered: list[int] = []
    pipeline = psycopg.Connection.pipeline

    def counted(self: psycopg.Connection[Any]) -> Any:
        entered.append(1)
        return pipeline(self)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    return entered
