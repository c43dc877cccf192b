"""Registers the domain rules and hooks with the REST layer (imported once by the app).

Each line imports a module whose import registers validation steps
(``service.rest.validation.register_rule``), same-transaction hooks
(``service.rest.hooks.register_after_write``) or operations.
"""

from __future__ import annotations


def wire() -> None:
    """Import the domain modules for their registrations (idempotent)."""
    import service.assessment.responses
    import service.delivery.endpoint_rules
    import service.delivery.operations
    import service.referrals.workflow  # noqa: F401
