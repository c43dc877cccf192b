"""The clinic flow every client in tests/clients performs, and the checks on what it reports and
on what the hub holds afterwards.

A run reports one JSON-shaped dict (the JavaScript scripts print it on stdout; the Python flows
build it in process), so the same ``check`` judges all six clients:

    token       {"scope": granted}  (SMART Backend Services through the hub's token endpoint)
                or {"minted": True} (a client that cannot sign assertions is given a bearer token)
    created     {"id", "versionId"}           POST Patient
    read        {"id", "versionId", "family"} GET Patient/{id}
    searched    [ids]                         GET Patient?family=…&identifier=…&gender=…
    updated     {"versionId", "birthDate"}    PUT Patient/{id}
    patched     {"versionId", "gender"}       PATCH Patient/{id} (None where the client cannot patch)
    stalePatch  status                        PATCH with a stale If-Match (where the client sends it)
    conditional {"first", "again"}            POST with If-None-Exist (or search parameters), twice
                                              ("again" None: the client has no conditional create)
    paged       [ids]                         GET Patient?family=…&_count=1, following the `next` links
    deleted     {"id", "statusAfter"}         DELETE Patient/{id}, then GET it
    referral    {"serviceRequest", "task", "taskStatus", "owner", "accepted": {"status", "versionId"}}
                the clinic refers; the partner finds the Task by focus and accepts it
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.referrals._workflow_hub import Hub, entries, ok, referral_body
from tests.support.clients import FhirClients, signing_jwk

LOCAL = "https://clinic.example.org/Id/local"
BIRTH_DATE = "1980-05-06"

# The run_js fixture: a script in tests/clients/js, its stdin configuration -> its JSON result.
RunJs = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Flow:
    """One client's run: the referral world (clinic, partner, an opt-out service) and names
    unique to this run, so a failure points at one client's data."""

    hub: Hub
    tag: str

    @classmethod
    def build(cls, fhir: FhirClients, client_name: str) -> Flow:
        return cls(Hub.build(fhir), f"{client_name}-{uuid.uuid4().hex[:6]}")

    @property
    def family(self) -> str:
        # Letters only: the family name is searched with the string parameter's prefix match.
        return "Flow" + "".join(c for c in self.tag if c.isalpha()).capitalize()

    def identifier(self, n: int) -> str:
        return f"{LOCAL}|{self.tag}-{n}"

    def patient(self, n: int) -> dict[str, Any]:
        return {
            "resourceType": "Patient",
            "identifier": [{"system": LOCAL, "value": f"{self.tag}-{n}"}],
            "name": [{"family": self.family, "given": ["Ada"]}],
            "gender": "unknown",
        }

    def referral(self, patient_id: str) -> dict[str, Any]:
        return referral_body(f"Patient/{patient_id}", self.hub.opt_out, self.hub.clinic.org_ref)

    def search(self) -> dict[str, str]:
        return {"family": self.family, "identifier": self.identifier(1), "gender": "unknown"}

    def config(self) -> dict[str, Any]:
        """What a JavaScript script is given on stdin (the tokens and key are the test's own)."""
        fhir = self.hub.fhir
        return {
            "fhirBase": f"{fhir.base_url}/fhir",
            "hubBase": fhir.base_url,
            "tokenUrl": fhir.token_url,
            "clinic": {"clientId": self.hub.clinic.client_id, "token": self.hub.clinic.token},
            "partner": {"token": self.hub.partner.token},
            "privateJwk": signing_jwk(),
            "scope": "system/*.cruds",
            "patients": [self.patient(n) for n in (1, 2, 3, 4)],
            "identifier2": self.identifier(2),
            "search": self.search(),
            "birthDate": BIRTH_DATE,
            "patch": patch_operations(),
            # The script sets the subject to the Patient it created.
            "referral": {k: v for k, v in self.referral("-").items() if k != "subject"},
            "accept": accept_operations(),
        }


def patch_operations() -> list[dict[str, Any]]:
    # A `test` first: the patch applies only to the version the client read (with If-Match too).
    return [
        {"op": "test", "path": "/gender", "value": "unknown"},
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "01632 960000"}]},
    ]


def accept_operations() -> list[dict[str, Any]]:
    return [
        {"op": "test", "path": "/status", "value": "requested"},
        {"op": "replace", "path": "/status", "value": "accepted"},
    ]


def check(flow: Flow, result: dict[str, Any], *, patch: bool, conditional: bool) -> None:
    """What the client reported, then what the hub holds (read back as the clinic over HTTP)."""
    hub = flow.hub
    if "minted" not in result["token"]:
        granted = result["token"]["scope"].split()
        assert "system/*.cruds" in granted, granted
        assert not [s for s in granted if not s.startswith("system/")], granted  # launch/openid dropped

    pid = result["created"]["id"]
    assert result["created"]["versionId"] == "1"
    assert result["read"] == {"id": pid, "versionId": "1", "family": flow.family}
    assert result["searched"] == [pid]
    assert result["updated"] == {"versionId": "2", "birthDate": BIRTH_DATE}
    stored = ok(hub.clinic.get(f"/fhir/Patient/{pid}"))
    if "stalePatch" in result:  # a PATCH with the If-Match of version 1, sent after version 3
        assert result["stalePatch"] == 412
    if patch:
        assert result["patched"] == {"versionId": "3", "gender": "female"}
        assert (stored["meta"]["versionId"], stored["gender"]) == ("3", "female")
        assert stored["telecom"] == [{"system": "phone", "value": "01632 960000"}]
    else:
        assert result["patched"] is None
        assert stored["meta"]["versionId"] == "2"
    assert stored["birthDate"] == BIRTH_DATE
    assert stored["name"][0]["family"] == flow.family

    second = result["conditional"]["first"]
    assert result["conditional"]["again"] == (second if conditional else None)
    by_identifier = {"identifier": flow.identifier(2), "_total": "accurate"}
    found = ok(hub.clinic.get("/fhir/Patient", params=by_identifier))
    assert found["total"] == 1  # a conditional create found the first, made no duplicate
    # Two matches one to a page: both pages reached through the links, each match once.
    assert sorted(result["paged"]) == sorted([pid, second])

    gone = result["deleted"]["id"]
    assert gone != pid
    assert result["deleted"]["statusAfter"] == 410
    assert hub.clinic.get(f"/fhir/Patient/{gone}").status_code == 410

    referral = result["referral"]
    assert referral["taskStatus"] == "requested"
    assert referral["owner"] == hub.partner.org_ref
    assert referral["accepted"] == {"status": "accepted", "versionId": "2"}
    focus = f"ServiceRequest/{referral['serviceRequest']}"
    tasks = entries(hub.clinic.get("/fhir/Task", params={"focus": focus}))
    assert [(t["id"], t["status"]) for t in tasks] == [(referral["task"], "accepted")]
    request = ok(hub.clinic.get(f"/fhir/ServiceRequest/{referral['serviceRequest']}"))
    assert request["subject"] == {"reference": f"Patient/{pid}"}
