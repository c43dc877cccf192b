"""Delivery: the outbox worker, the payloads it builds, and the rules for Endpoints.

A referral, a Task change or a consent withdrawal writes an outbox row in its own transaction; a
worker claims due rows with a lease, builds what the recipient may receive (consent checked again,
minimised), and hands it to the adapter chosen by the recipient's Endpoint.connectionType.
"""
