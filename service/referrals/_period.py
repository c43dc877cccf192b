"""FHIR date/dateTime bounds at their own precision, for Consent periods.

http://hl7.org/fhir/R4/datatypes.html#dateTime: year, year-month, date, or date-time.
A date without a zone is read as Europe/London wall-clock time: consents are given
in London, and a date-only end covers the whole local day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# http://hl7.org/fhir/R4/datatypes.html#dateTime: year, year-month, date, or date-time (seconds required by
# R4; minutes-only accepted here); a zone is required with a time, but tolerated missing.
_FHIR_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})(-(?P<month>[0-9]{2})(-(?P<day>[0-9]{2})"
    r"(T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(:(?P<second>[0-9]{2})(?P<fraction>\.[0-9]+)?)?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)
try:
    _LOCAL: tzinfo = ZoneInfo("Europe/London")
except ZoneInfoNotFoundError:  # pragma: no cover - hosts without tzdata
    _LOCAL = UTC


def period_covers(period: Mapping[str, Any], now: datetime) -> bool | None:
    """Whether ``now`` falls in the Period (open ends allowed); None when a bound cannot be read."""
    verdicts: list[bool | None] = []
    for key in ("start", "end"):
        value = period.get(key)
        if value is None:
            continue
        bounds = _bounds(value)
        if bounds is None:
            verdicts.append(None)
        else:
            verdicts.append(now >= bounds[0] if key == "start" else now < bounds[1])
    if False in verdicts:
        return False
    return None if None in verdicts else True


def period_end(period: object) -> datetime | None:
    """The first instant after a Period's end (at the end's own precision); None when open or unreadable."""
    if not isinstance(period, Mapping) or period.get("end") is None:
        return None
    bounds = _bounds(period["end"])
    return bounds[1].astimezone(UTC) if bounds else None


def certainly_after(later: object, earlier: object) -> bool:
    """Whether dateTime ``later`` is after ``earlier`` at both their precisions (a date-only value covers
    its whole day, so "2025-01-15" is not after "2025-01-15T09:00:00Z"); False when either is unreadable."""
    a, b = _bounds(later), _bounds(earlier)
    return a is not None and b is not None and a[0] >= b[1]


def period_problem(period: object) -> str | None:
    if not isinstance(period, dict):
        return "must be a Period"
    bounds = {}
    for key in ("start", "end"):
        if period.get(key) is not None:
            parsed = _bounds(period[key])
            if parsed is None:
                return f"{key} is not a FHIR date or dateTime"
            bounds[key] = parsed
    if "start" in bounds and "end" in bounds and bounds["start"][0] >= bounds["end"][1]:
        return "per-1: start must not be after end"
    return None


def _bounds(value: object) -> tuple[datetime, datetime] | None:
    """[first instant covered, first instant after) for a FHIR date/dateTime at its own precision."""
    match = _FHIR_DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    g = match.groupdict()
    year = int(g["year"])
    try:
        zone = _LOCAL if not g["tz"] else UTC if g["tz"] == "Z" else _offset(g["tz"])
        if g["month"] is None:
            return datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)
        month = int(g["month"])
        if g["day"] is None:
            after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
            return datetime(year, month, 1, tzinfo=zone), after
        day = datetime(year, month, int(g["day"]), tzinfo=zone)
        if g["hour"] is None:
            # Wall-clock arithmetic on an aware datetime: a 23- or 25-hour day still ends at midnight.
            return day, day + timedelta(days=1)
        start = day.replace(
            hour=int(g["hour"]),
            minute=int(g["minute"]),
            second=int(g["second"] or 0),
            microsecond=int(float(g["fraction"] or 0) * 1_000_000),
        )
    except ValueError:
        return None
    if g["fraction"]:
        step = timedelta(microseconds=1)
    else:
        step = timedelta(seconds=1) if g["second"] else timedelta(minutes=1)
    return start, start + step


def _offset(text: str) -> tzinfo:
    sign = 1 if text[0] == "+" else -1
    hours, minutes = int(text[1:3]), int(text[4:6])
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
