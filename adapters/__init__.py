"""Delivery adapters: how the hub reaches a partner or clinic (FHIR push, Standard Webhooks, secure
email; no Endpoint means the recipient pulls).

``adapters.base`` is the contract (the Protocol, the Delivery handed in, the typed errors);
``adapters.registry`` finds installed adapters through the ``wraparound.adapters`` entry-point group.
Third-party adapters that make HTTP calls should use the helpers re-exported here (``session`` for
the client of one attempt): they connect only to
vetted public addresses (no DNS-rebinding gap), never follow redirects, enforce a total deadline and a
response-size cap, and map statuses to the typed errors. This package never imports storage.
"""

from adapters._http import HttpReply, client, post, receipt_or_raise, session

__all__ = ["HttpReply", "client", "post", "receipt_or_raise", "session"]
