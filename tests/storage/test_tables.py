"""UtcDateTime's own SQLite bind processor writes what SQLAlchemy's DATETIME would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, create_engine
from sqlalchemy.dialects import sqlite

from service.storage.tables import UtcDateTime

LONDON_SUMMER = timezone(timedelta(hours=1))
VALUES = [
    datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 59, 59, 999_999, tzinfo=LONDON_SUMMER),  # a day earlier in UTC
    datetime(2026, 12, 3, 11, 12, 59, 61_000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


def _sqlalchemy_text(value: datetime) -> str:
    """What SQLAlchemy's own SQLite DATETIME would store for the UTC form of ``value``."""
    dialect = sqlite.dialect()
    process = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    stored = process(value.astimezone(UTC).replace(tzinfo=None))
    assert isinstance(stored, str)
    return stored


@pytest.mark.parametrize("value", VALUES, ids=str)
def test_sqlite_timestamps_are_stored_as_sqlalchemy_would_and_read_back_as_the_same_instant(
    value: datetime,
) -> None:
    dialect = sqlite.dialect()
    column = UtcDateTime()
    bind = column.dialect_impl(dialect).bind_processor(dialect)
    result = column.dialect_impl(dialect).result_processor(dialect, None)
    assert bind is not None
    assert result is not None
    stored = bind(value)
    assert stored == _sqlalchemy_text(value)
    back = result(stored)
    assert back == value
    assert back.tzinfo is UTC


def test_a_naive_timestamp_is_refused_on_both_databases() -> None:
    postgresql = create_engine("postgresql+psycopg://").dialect  # no connection is made
    for dialect in (sqlite.dialect(), postgresql):
        bind = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert bind is not None
        with pytest.raises(ValueError, match="naive"):
            bind(datetime(2026, 1, 1, 12, 0))
        assert bind(None) is None
