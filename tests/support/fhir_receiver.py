"""A tiny partner FHIR server on loopback, built on :class:`tests.support.receiver.Receiver`.

    with FhirReceiver.start(smart=TokenEndpoint(client_id="hub", public_jwk=key.as_dict())) as fhir:
        ... deliver to fhir.base_url with token_url=fhir.token_url ...
        assert fhir.count("Patient") == 1

``POST /fhir`` takes a transaction Bundle and processes it as a real server would
(https://hl7.org/fhir/R4/http.html#trules): a conditional create (``ifNoneExist: identifier=sys|val``)
that matches keeps the one copy and answers 200, otherwise the resource is stored and answered 201;
references to an entry's ``fullUrl`` are rewritten to the stored id. With ``smart`` it requires a
bearer token from ``POST /token``, which verifies the SMART Backend Services client assertion
(https://hl7.org/fhir/smart-app-launch/backend-services.html#signature-verification) with joserfc.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from auth.client import ASSERTION_TYPE
from tests.support import logscan
from tests.support.receiver import Receiver, RecordedRequest, Reply

FHIR_JSON = "application/fhir+json"


@dataclass
class TokenEndpoint:
    client_id: str
    public_jwk: dict[str, Any]  # must carry the kid the hub puts in its assertions
    expires_in: int = 300
    scope: str = "system/*.write"


@dataclass
class Assertion:
    header: dict[str, Any]
    claims: dict[str, Any]
    received_at: float  # time.time()


@dataclass
class FhirReceiver:
    rx: Receiver
    smart: TokenEndpoint | None = None
    stored: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # type -> id -> resource
    transactions: list[dict[str, Any]] = field(default_factory=list)  # every Bundle received, as sent
    assertions: list[Assertion] = field(default_factory=list)  # every assertion that verified
    refusals: list[str] = field(default_factory=list)  # why token requests were refused
    token_requests: int = 0
    token_delay: float = 0.0  # seconds the token endpoint takes to answer (a slow authorisation server)
    _identifiers: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, "sys|val") -> id
    _tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.monotonic())
    _fhir_script: list[Reply] = field(default_factory=list)
    _token_script: list[Reply] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    @contextmanager
    def start(cls, *, smart: TokenEndpoint | None = None) -> Iterator[FhirReceiver]:
        with Receiver.start() as rx:
            server = cls(rx, smart)
            rx.handler = server._handle
            yield server
            assert not rx.errors, rx.errors

    @property
    def base_url(self) -> str:
        return self.rx.url("/fhir")

    @property
    def token_url(self) -> str:
        return self.rx.url("/token")

    @property
    def jtis(self) -> list[str]:
        return [a.claims["jti"] for a in self.assertions]

    def count(self, resource_type: str) -> int:
        with self._lock:
            return len(self.stored.get(resource_type, {}))

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.stored.get(resource_type, {}).values())

    def fail_fhir(self, *replies: Reply) -> None:
        """Answer the next FHIR requests with these, in order (after the token check)."""
        with self._lock:
            self._fhir_script.extend(replies)

    def fail_token(self, *replies: Reply) -> None:
        with self._lock:
            self._token_script.extend(replies)

    def revoke_tokens(self) -> None:
        """Forget every issued token: the next FHIR request with one gets 401."""
        with self._lock:
            self._tokens.clear()

    # --- the server ---------------------------------------------------------------------------

    def _handle(self, request: RecordedRequest) -> Reply:
        path = request.path.split("?", 1)[0]
        if request.method == "POST" and path == "/token" and self.smart is not None:
            return self._token(request)
        if request.method == "POST" and path.rstrip("/") == "/fhir":
            return self._transaction(request)
        return _outcome(404, "not-found")

    def _token(self, request: RecordedRequest) -> Reply:
        assert self.smart is not None
        with self._lock:
            self.token_requests += 1
            if self._token_script:
                return self._token_script.pop(0)
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        refusal = self._check_assertion(form)
        if refusal is not None:
            with self._lock:
                self.refusals.append(refusal)
            return _json(401, {"error": "invalid_client"})
        if self.token_delay:
            time.sleep(self.token_delay)  # this request's own server thread
        token = secrets.token_urlsafe(24)
        logscan.SECRETS.extend([token, form["client_assertion"]])
        with self._lock:
            self._tokens[token] = time.monotonic() + self.smart.expires_in
        reply = {"access_token": token, "token_type": "bearer", "expires_in": self.smart.expires_in}
        return _json(200, {**reply, "scope": form.get("scope", "")})

    def _check_assertion(self, form: dict[str, str]) -> str | None:
        assert self.smart is not None
        if form.get("grant_type") != "client_credentials":
            return "grant_type"
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return "client_assertion_type"
        jwk = self.smart.public_jwk
        key = RSAKey.import_key(jwk) if jwk["kty"] == "RSA" else ECKey.import_key(jwk)
        try:
            token = jwt.decode(form["client_assertion"], key, algorithms=["RS384", "ES384"])
        except (JoseError, ValueError):
            return "signature"
        header, claims, now = dict(token.header), dict(token.claims), time.time()
        checks = {
            "kid": header.get("kid") == jwk.get("kid"),
            "iss": claims.get("iss") == self.smart.client_id,
            "sub": claims.get("sub") == self.smart.client_id,
            "aud": claims.get("aud") == self.token_url,
            "exp": isinstance(claims.get("exp"), int) and now < claims["exp"] <= now + 300,
            "jti": isinstance(claims.get("jti"), str),
            "scope": form.get("scope") == self.smart.scope,
        }
        if failed := [name for name, ok in checks.items() if not ok]:
            return ",".join(failed)
        with self._lock:
            if claims["jti"] in self.jtis:  # a replayed assertion (RFC 7523 §3, item 7)
                return "jti-replayed"
            self.assertions.append(Assertion(header, claims, now))
        return None

    def _authorised(self, request: RecordedRequest) -> bool:
        if self.smart is None:
            return True
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._lock:
            expiry = self._tokens.get(token)
        return scheme.lower() == "bearer" and expiry is not None and time.monotonic() < expiry

    def _transaction(self, request: RecordedRequest) -> Reply:
        if not self._authorised(request):
            return Reply(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        with self._lock:
            if self._fhir_script:
                return self._fhir_script.pop(0)
        if (request.header("content-type") or "").split(";")[0] != FHIR_JSON:
            return _outcome(415, "not-supported")
        bundle = json.loads(request.body)
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            return _outcome(400, "invalid")
        with self._lock:
            self.transactions.append(bundle)
            return _json(200, self._process(bundle))

    def _process(self, bundle: dict[str, Any]) -> dict[str, Any]:
        # POST with ifNoneExist (conditional create) and PUT Type?identifier= (conditional update), the
        # two forms a hub delivery uses; conditional references (Type?identifier=...) are resolved too.
        responses, written, moved = [], [], {}
        for entry in bundle.get("entry", []):
            resource, request = entry["resource"], entry["request"]
            rtype = resource["resourceType"]
            if request["method"] == "PUT":
                url, _, condition = request["url"].partition("?")
                assert url == rtype, request
                assert condition.startswith("identifier="), condition  # all we understand
            else:
                assert request["method"] == "POST", request
                assert request["url"] == rtype, request
                condition = request.get("ifNoneExist", "")
                assert not condition or condition.startswith("identifier="), condition
            match = self._identifiers.get((rtype, unquote(condition.removeprefix("identifier="))))
            if match is not None and request["method"] == "POST":
                moved[entry.get("fullUrl")] = f"{rtype}/{match}"
                responses.append({"response": {"status": "200 OK", "location": f"{rtype}/{match}"}})
                continue
            rid = match or uuid.uuid4().hex
            stored = {**resource, "id": rid}
            self.stored.setdefault(rtype, {})[rid] = stored
            for ident in _identifiers(stored):
                self._identifiers[(rtype, f"{ident.get('system')}|{ident.get('value')}")] = rid
            moved[entry.get("fullUrl")] = f"{rtype}/{rid}"
            written.append(stored)
            status = "200 OK" if match else "201 Created"
            responses.append({"response": {"status": status, "location": f"{rtype}/{rid}"}})
        for resource in written:
            _rewrite(resource, moved, self._identifiers)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": responses}


def _identifiers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    value = resource.get("identifier")
    return value if isinstance(value, list) else [value] if isinstance(value, dict) else []


def _rewrite(node: Any, moved: dict[Any, str], identifiers: dict[tuple[str, str], str]) -> None:
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference in moved:
            node["reference"] = moved[reference]
        elif isinstance(reference, str) and "?identifier=" in reference:
            rtype, _, value = reference.partition("?identifier=")
            found = identifiers.get((rtype, unquote(value)))
            if found is not None:
                node["reference"] = f"{rtype}/{found}"
        for value in node.values():
            _rewrite(value, moved, identifiers)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value, moved, identifiers)


def _json(status: int, body: dict[str, Any]) -> Reply:
    content_type = "application/json" if "access_token" in body or "error" in body else FHIR_JSON
    return Reply(status, {"Content-Type": content_type}, json.dumps(body).encode())


def _outcome(status: int, code: str) -> Reply:
    body = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}
    return _json(status, body)
