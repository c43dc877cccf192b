"""The authenticated caller, as the request pipeline hands it to domain code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["clinic", "partner", "admin"]


@dataclass(frozen=True)
class Caller:
    client_id: str
    organization_id: str  # the id of the caller's Organization
    role: Role
    scopes: str  # granted SMART scopes, space separated
    jti: str  # the access token's id, recorded in audit (never the token)
    source: str = ""  # network address of the request
    # A person signed in to the web app (service/web/): their account's email. The client is then the
    # web app itself, and audit names the person as the agent, for the organisation.
    person: str = ""

    @property
    def organization_ref(self) -> str:
        return f"Organization/{self.organization_id}"


# The hub itself, for work it does on its own account (start-up loading, consent withdrawal).
SYSTEM = Caller(
    client_id="wraparound", organization_id="wraparound", role="admin", scopes="system/*.cruds", jti=""
)
