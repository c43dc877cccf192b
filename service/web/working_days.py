"""How long a referral has waited, in working days, against the first-contact target.

Working days are Monday to Friday (``WRAPAROUND_FIRST_CONTACT_WORKING_DAYS``, default 5, is the
programme's target for a partner's first contact with the person). Bank holidays are not subtracted:
the target errs on the side of contacting people sooner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

# Business statuses (CodeSystem task-business-status) that mean the person has been reached.
CONTACT_MADE = frozenset({"contacted", "first-appointment", "did-not-attend", "waitlisted"})
_FINAL_OR_WORKING = frozenset(
    {"in-progress", "completed", "failed", "rejected", "cancelled", "entered-in-error"}
)


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 on the day it arrived)."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + timedelta(days=offset)).weekday() < 5:
            count += 1
    return count


@dataclass(frozen=True)
class Waiting:
    working_days: int
    target: int
    contacted: bool

    @property
    def overdue(self) -> bool:
        return not self.contacted and self.working_days > self.target

    @property
    def text(self) -> str:
        if self.contacted:
            return "Contact made"
        if self.overdue:
            return f"{self.working_days} working days: over the {self.target}-day target"
        return f"{self.working_days} of {self.target} working days"


def waiting(received: date, today: date, target: int, status: str, business_status: str | None) -> Waiting:
    contacted = status in _FINAL_OR_WORKING or business_status in CONTACT_MADE
    return Waiting(working_days_between(received, today), target, contacted)
