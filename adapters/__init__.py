"""Delivery adapters (FHIR push, Standard Webhooks, email, pull).

Delivery on a transactional outbox is the next piece of work (see ROADMAP.md). The
referral write path already records what must be sent (``service.delivery.outbox``);
adapters will consume those rows. This package never imports storage.
"""
