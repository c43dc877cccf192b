import random
from datetime import UTC, datetime, timedelta

import pytest

from service.fhir.instant import fhir_instant
from service.search._dates import MAX_DATETIME, _any_range, approximate, date_range


def _utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", _utc(2024, 1, 1), _utc(2024, 12, 31, 23, 59, 59, 999999)),
        ("2024-03", _utc(2024, 3, 1), _utc(2024, 3, 31, 23, 59, 59, 999999)),
        ("2024-02", _utc(2024, 2, 1), _utc(2024, 2, 29, 23, 59, 59, 999999)),
        ("2024-12", _utc(2024, 12, 1), _utc(2024, 12, 31, 23, 59, 59, 999999)),
        ("2024-03-05", _utc(2024, 3, 5), _utc(2024, 3, 5, 23, 59, 59, 999999)),
        ("2024-03-05T10:15", _utc(2024, 3, 5, 10, 15), _utc(2024, 3, 5, 10, 15, 59, 999999)),
        ("2024-03-05T10:15:30Z", _utc(2024, 3, 5, 10, 15, 30), _utc(2024, 3, 5, 10, 15, 30, 999999)),
        (
            "2024-03-05T10:15:30.5Z",
            _utc(2024, 3, 5, 10, 15, 30, 500000),
            _utc(2024, 3, 5, 10, 15, 30, 599999),
        ),
        (
            "2024-03-05T10:15:30.123456Z",
            _utc(2024, 3, 5, 10, 15, 30, 123456),
            _utc(2024, 3, 5, 10, 15, 30, 123456),
        ),
        # An offset moves the range to UTC; no offset means UTC.
        ("2024-03-05T10:15:30+10:00", _utc(2024, 3, 5, 0, 15, 30), _utc(2024, 3, 5, 0, 15, 30, 999999)),
        ("2024-03-05T01:00:00-05:00", _utc(2024, 3, 5, 6), _utc(2024, 3, 5, 6, 0, 0, 999999)),
        ("2024-03-05T10:15:30", _utc(2024, 3, 5, 10, 15, 30), _utc(2024, 3, 5, 10, 15, 30, 999999)),
        ("9999", _utc(9999, 1, 1), MAX_DATETIME),
    ],
)
def test_date_range_follows_precision(text: str, low: datetime, high: datetime) -> None:
    assert date_range(text) == (low, high)


@pytest.mark.parametrize(
    "text",
    ["", "24", "2024-13", "2024-02-30", "2024-03-05T25:00", "2024-03-05T10:00+15:00", "yesterday", "2024/03"],
)
def test_malformed_dates_raise(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        date_range(text)


def test_approximate_widens_by_a_tenth_of_the_gap_to_now() -> None:
    now = _utc(2024, 1, 1)
    low, high = _utc(2014, 1, 1), _utc(2014, 1, 1, 23, 59, 59)
    wide_low, wide_high = approximate(low, high, now)
    margin = (now - low) / 10
    assert (wide_low, wide_high) == (low - margin, high + margin)


def test_approximate_is_never_narrower_than_a_day() -> None:
    now = _utc(2024, 1, 1, 12)
    low = high = _utc(2024, 1, 1, 11)
    assert approximate(low, high, now) == (low - timedelta(days=1), high + timedelta(days=1))


def test_the_hubs_own_instants_take_a_short_path_to_the_same_range() -> None:
    # fhir_instant's form (UTC, milliseconds, Z) is parsed in C; the range must be the general parse's.
    rng = random.Random(11)
    moments = [
        datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ]
    moments += [
        datetime(1, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(315_000_000_000)) for _ in range(500)
    ]
    for moment in moments:
        text = fhir_instant(moment)
        assert date_range(text) == _any_range(text), text
    for text in ("2024-02-30T00:00:00.000Z", "2024-13-01T00:00:00.000Z", "2024-01-01T24:00:00.000Z"):
        with pytest.raises(ValueError, match=r"out of range|must be in"):
            date_range(text)
