"""An example third-party delivery adapter: a one-line notice to a team chat's incoming webhook.

It shows the whole contract (``adapters.base.Adapter``): a slug, the ``Endpoint.connectionType`` it
serves, a pydantic model for its per-Endpoint configuration, ``wants_bundle`` and ``deliver``. Like the
email adapter it never carries clinical content — only that something is waiting and where to collect
it — so it asks for no Bundle. It uses the hub's HTTP helpers, which refuse private addresses, pin the
vetted address, cap the response and map statuses to the typed errors.
"""

from __future__ import annotations

import json
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters import post, receipt_or_raise, session
from adapters.base import ConnectionType, Delivery, Receipt, Transport

CONNECTION_TYPE = ConnectionType(
    "https://example.org/fhir/CodeSystem/endpoint-connection-type", "chat-notice"
)

_TEXT = {
    "referral.created": "A new referral is waiting for your team.",
    "task.updated": "A referral your team holds has changed.",
    "consent.withdrawn": "A referral your team holds has been stopped.",
    "consent.expired": "A referral your team holds has been stopped.",
}


class ChatNoticeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["text", "markdown"] = "text"
    prefix: str = Field(default="", max_length=40, pattern=r"^[\w .:-]*$")


class ChatNoticeAdapter:
    slug: ClassVar[str] = "chat-notice"
    connection_type: ClassVar[ConnectionType] = CONNECTION_TYPE
    config_model: ClassVar[type[BaseModel]] = ChatNoticeConfig
    description: ClassVar[str] = "Example: a one-line notice (no clinical detail) to a chat webhook."

    def wants_bundle(self, config: ChatNoticeConfig) -> bool:
        return False

    async def deliver(self, delivery: Delivery, config: ChatNoticeConfig, transport: Transport) -> Receipt:
        line = f"{config.prefix} {_TEXT.get(delivery.event, 'A referral has changed.')}".strip()
        link = f"[Open it]({delivery.collect_url})" if config.format == "markdown" else delivery.collect_url
        content = json.dumps({"text": f"{line} {link}", "id": delivery.message_id}).encode()
        async with session(transport) as http:
            reply = await post(
                http,
                delivery.address,
                content=content,
                headers={"content-type": "application/json", "idempotency-key": delivery.message_id},
                transport=transport,
            )
        return receipt_or_raise(reply)
