"""FHIR date/dateTime/instant values as inclusive UTC ranges.

Every FHIR date is a range set by its precision (http://hl7.org/fhir/R4/search.html#date):
``2024`` is the whole year, ``2024-03`` the whole month, ``2024-03-05T10:00`` that
minute. Both the indexer and the search parser turn values into ``(low, high)``, both
inclusive, to the microsecond. Values with a time but no offset (invalid in FHIR
resources, allowed in search URLs) are taken as UTC, as are plain dates: Wraparound
serves one time zone's clinics and UTC keeps ranges comparable across databases.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

MIN_DATETIME = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATETIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_INSTANT_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)
_MICRO = timedelta(microseconds=1)
_MILLI = timedelta(milliseconds=1)


def _offset(tz: str | None) -> timezone:
    if tz is None or tz == "Z":
        return UTC
    sign = -1 if tz[0] == "-" else 1
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"invalid time zone offset {tz!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _to_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return MIN_DATETIME if moment.year == 1 else MAX_DATETIME


def date_range(text: str) -> tuple[datetime, datetime]:
    """The inclusive UTC range a FHIR date, dateTime or instant stands for (ValueError if malformed)."""
    if _INSTANT_MS.fullmatch(text):
        # The hub's own instants (fhir/instant.py: UTC, milliseconds), as every AuditEvent.recorded and
        # meta.lastUpdated is: a millisecond, parsed in C (the general parse was 5 % of a read by id).
        low = datetime.fromisoformat(text[:23]).replace(tzinfo=UTC)
        return low, low + _MILLI - _MICRO
    return _any_range(text)


def _any_range(text: str) -> tuple[datetime, datetime]:
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a FHIR date/dateTime: {text!r}")
    g = match.groupdict()
    tz = _offset(g["tz"])
    year = int(g["y"])
    try:
        if g["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year + 1, 1, 1, tzinfo=tz) - _MICRO if year < 9999 else MAX_DATETIME
        elif g["d"] is None:
            low = datetime(year, int(g["m"]), 1, tzinfo=tz)
            ny, nm = _next_month(year, int(g["m"]))
            high = datetime(ny, nm, 1, tzinfo=tz) - _MICRO if ny <= 9999 else MAX_DATETIME
        elif g["H"] is None:
            low = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            high = low + timedelta(days=1) - _MICRO
        else:
            second = int(g["S"] or 0)
            fraction = g["f"] or ""
            micro = int((fraction + "000000")[:6])
            low = datetime(year, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), second, micro, tzinfo=tz)
            if g["S"] is None:
                step = timedelta(minutes=1)
            elif not fraction:
                step = timedelta(seconds=1)
            else:
                step = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
            high = low + step - _MICRO
    except OverflowError:
        return MIN_DATETIME, MAX_DATETIME
    return _to_utc(low), _to_utc(high)


def approximate(low: datetime, high: datetime, now: datetime) -> tuple[datetime, datetime]:
    """Widen a range for the ``ap`` prefix.

    The spec leaves "approximately" to the server and suggests 10% of the gap between
    now and the value; we use that, but never less than one day either side.
    """
    margin = max(abs(now - low) / 10, timedelta(days=1))
    try:
        wide_low = low - margin
    except OverflowError:
        wide_low = MIN_DATETIME
    try:
        wide_high = high + margin
    except OverflowError:
        wide_high = MAX_DATETIME
    return wide_low, wide_high
