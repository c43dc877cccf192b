"""Side effects that must happen in the same transaction as a write.

Domain modules (referrals, consent, assessment) register here; the REST layer calls
them after the resource is stored and before the transaction commits. This is also
the one place where "something must be sent" is recorded (the outbox).
"""

from __future__ import annotations

from collections.abc import Callable

from service.rest.context import Context
from service.storage.resources import Stored

AfterWrite = Callable[[Context, Stored, Stored | None], None]

_AFTER: dict[str, list[AfterWrite]] = {}


def register_after_write(resource_type: str, hook: AfterWrite) -> None:
    _AFTER.setdefault(resource_type, []).append(hook)


def run_after_write(ctx: Context, stored: Stored, old: Stored | None) -> None:
    for hook in _AFTER.get(stored.resource_type, []):
        hook(ctx, stored, old)
