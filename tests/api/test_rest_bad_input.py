"""Bad input over real HTTP: the right status, an OperationOutcome, nothing stored, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.clients import Client, FhirClients

LOCAL = "https://clinic.example.org/Id/local"
GOOD: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": LOCAL, "value": "bad-input-1"}],
    "name": [{"family": "Probe", "given": ["Bad"]}],
}
LIMIT = 5 * 1024 * 1024  # WRAPAROUND_MAX_BODY_BYTES default


@pytest.fixture
def clinic(fhir: FhirClients) -> Client:
    return fhir.client("clinic")


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"]
    return body


def _nothing_stored(client: Client) -> None:
    bundle = client.get("/fhir/Patient", params={"_summary": "count"}).json()
    assert bundle["total"] == 0


def _post_raw(client: Client, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return client.post("/fhir/Patient", content=content, headers=headers or None)


@pytest.mark.parametrize(
    ("name", "body", "expression"),
    [
        ("unknown element", {**GOOD, "colour": "blue"}, "Patient.colour"),
        ("wrong type: object for list", {**GOOD, "name": {"family": "x"}}, "Patient.name"),
        ("wrong type: number for string", {**GOOD, "name": [{"family": 5}]}, "Patient.name[0].family"),
        ("wrong type: string for boolean", {**GOOD, "active": "yes"}, "Patient.active"),
        ("wrong type: number for boolean", {**GOOD, "active": 1}, "Patient.active"),
        (
            "wrong type: string for integer",
            {**GOOD, "multipleBirthInteger": "3"},
            "Patient.multipleBirthInteger",
        ),
        ("wrong type: object for id", {**GOOD, "id": {}}, "Patient.id"),
        ("wrong type: number for id", {**GOOD, "id": 7}, "Patient.id"),
        ("not a FHIR id", {**GOOD, "id": "no spaces allowed"}, "Patient.id"),
        ("too long for a FHIR id", {**GOOD, "id": "x" * 65}, "Patient.id"),
        ("invalid date", {**GOOD, "birthDate": "1988-13-45"}, "Patient.birthDate"),
        ("invalid date format", {**GOOD, "birthDate": "15/04/1988"}, "Patient.birthDate"),
        ("number for date", {**GOOD, "birthDate": 0}, "Patient.birthDate"),
        ("invalid code", {**GOOD, "gender": "robot"}, "Patient.gender"),
        (
            "invalid nested code",
            {**GOOD, "name": [{"use": "nickname-ish", "family": "x"}]},
            "Patient.name[0].use",
        ),
    ],
)
def test_invalid_resource_is_400_and_not_stored(
    clinic: Client, name: str, body: dict[str, Any], expression: str
) -> None:
    outcome = _outcome(clinic.post("/fhir/Patient", json=body), 400)
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    assert expression in expressions, (name, outcome)
    _nothing_stored(clinic)


def test_invalid_update_keeps_the_old_version(clinic: Client) -> None:
    created = clinic.post("/fhir/Patient", json=GOOD).json()
    pid = created["id"]
    _outcome(clinic.put(f"/fhir/Patient/{pid}", json={**GOOD, "id": pid, "gender": "robot"}), 400)
    current = clinic.get(f"/fhir/Patient/{pid}").json()
    assert current["meta"]["versionId"] == "1"
    assert "gender" not in current


def test_malformed_json(clinic: Client) -> None:
    for raw in (b"{", b"{'resourceType': 'Patient'}", b"", b"\xff\xfe", b"[1, 2]", b"null", b'"Patient"'):
        _outcome(_post_raw(clinic, raw, **{"Content-Type": "application/fhir+json"}), 400)
    _nothing_stored(clinic)


def test_mismatched_resource_type(clinic: Client) -> None:
    _outcome(clinic.post("/fhir/Patient", json={**GOOD, "resourceType": "Practitioner"}), 400)
    _outcome(clinic.post("/fhir/Patient", json={k: v for k, v in GOOD.items() if k != "resourceType"}), 400)
    _nothing_stored(clinic)


def test_update_id_must_match_url(clinic: Client) -> None:
    pid = clinic.post("/fhir/Patient", json=GOOD).json()["id"]
    _outcome(clinic.put(f"/fhir/Patient/{pid}", json={**GOOD, "id": "someone-else"}), 400)
    _outcome(clinic.put(f"/fhir/Patient/{pid}", json=GOOD), 400)  # no id at all
    assert clinic.get(f"/fhir/Patient/{pid}").json()["meta"]["versionId"] == "1"
    assert clinic.get("/fhir/Patient/someone-else").status_code == 404


def test_oversized_body_is_413_before_parsing(clinic: Client) -> None:
    # Not even JSON: a 413 proves the server refused it before trying to parse it.
    big = b"x" * (LIMIT + 1)
    _outcome(_post_raw(clinic, big, **{"Content-Type": "application/fhir+json"}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is counted as it arrives
        for _ in range(6):
            yield b" " * (1024 * 1024)

    _outcome(_post_raw(clinic, chunks(), **{"Content-Type": "application/fhir+json"}), 413)
    padded = {**GOOD, "text": {"status": "generated", "div": "<div>" + "a" * LIMIT + "</div>"}}
    _outcome(clinic.post("/fhir/Patient", json=padded), 413)
    _nothing_stored(clinic)


def test_oversized_search_body_is_413(clinic: Client) -> None:
    response = clinic.post(
        "/fhir/Patient/_search",
        content=b"family=" + b"a" * (LIMIT + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _outcome(response, 413)


def test_deeply_nested_json_is_refused(clinic: Client) -> None:
    for depth in (100, 2000, 10_000, 100_000):
        raw = b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}"
        _outcome(_post_raw(clinic, raw, **{"Content-Type": "application/fhir+json"}), 400)
    nested: Any = {}
    for _ in range(200):
        nested = {"extension": [{"url": "http://x", **nested}]}
    _outcome(clinic.post("/fhir/Patient", json={**GOOD, **nested}), 400)
    _nothing_stored(clinic)


def test_very_wide_json_is_refused(clinic: Client) -> None:
    wide = {**GOOD, "identifier": [{"value": "1"}] * 250_000}
    raw = orjson.dumps(wide)
    assert len(raw) < LIMIT
    _outcome(_post_raw(clinic, raw, **{"Content-Type": "application/fhir+json"}), 400)
    wide_object = {**GOOD, **{f"k{i}": i for i in range(250_000)}}
    _outcome(_post_raw(clinic, orjson.dumps(wide_object), **{"Content-Type": "application/fhir+json"}), 400)
    _nothing_stored(clinic)


def test_xml_is_415(clinic: Client) -> None:
    xml = b'<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>'
    _outcome(_post_raw(clinic, xml, **{"Content-Type": "application/fhir+xml"}), 415)
    _outcome(_post_raw(clinic, b"hello", **{"Content-Type": "text/plain"}), 415)
    _outcome(clinic.get("/fhir/Patient", params={"_format": "xml"}), 415)
    _outcome(clinic.get("/fhir/Patient", params={"_format": "application/fhir+xml"}), 415)
    _outcome(clinic.get("/fhir/metadata", params={"_format": "xml"}), 415)
    _outcome(clinic.get("/fhir/Patient", headers={"Accept": "application/fhir+xml"}), 415)
    assert clinic.get("/fhir/Patient", params={"_format": "json"}).status_code == 200
    assert clinic.get("/fhir/Patient", params={"_format": "application/fhir+json"}).status_code == 200
    _nothing_stored(clinic)


def test_no_token_and_bad_token_are_401(fhir: FhirClients) -> None:
    plain = fhir.anonymous()
    for method, path in (("GET", "/fhir/Patient"), ("GET", "/fhir/Patient/x"), ("POST", "/fhir/Patient")):
        response = plain.request(method, path, json=GOOD if method == "POST" else None)
        _outcome(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        bad = plain.request(
            method,
            path,
            json=GOOD if method == "POST" else None,
            headers={"Authorization": "Bearer not-a-token"},
        )
        _outcome(bad, 401)
        assert "invalid_token" in bad.headers["WWW-Authenticate"]
        basic = plain.request(method, path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
        _outcome(basic, 401)


def test_unknown_resource_type_in_body_is_not_a_crash(clinic: Client) -> None:
    _outcome(clinic.post("/fhir/Patient", json={"resourceType": "NotAType"}), 400)
    contained = {**GOOD, "contained": [{"resourceType": "NotAType", "id": "x"}]}
    response = clinic.post("/fhir/Patient", json=contained)
    assert response.status_code == 400, response.text


_HOSTILE: list[tuple[str, str, Any]] = [
    ("GET", "/fhir/Patient/%00", None),
    ("GET", "/fhir/Patient/" + "a" * 65, None),
    ("GET", "/fhir/Patient/x/_history/abc", None),
    ("GET", "/fhir/Patient/x/_history/-1", None),
    ("GET", "/fhir/Patient/x/_history/99999999999999999999999", None),
    ("GET", "/fhir/Patient?birthdate=ge", None),
    ("GET", "/fhir/Patient?birthdate=9999999-01-01", None),
    ("GET", "/fhir/Patient?birthdate=2020-02-30", None),
    ("GET", "/fhir/Patient?_count=-5", None),
    ("GET", "/fhir/Patient?identifier=%7C%7C%7C", None),
    ("GET", "/fhir/Patient?general-practitioner:missing=maybe", None),
    ("GET", "/fhir/Patient?_lastUpdated=gtnever", None),
    ("GET", "/fhir/Patient?_cursor=%FF", None),
    ("GET", "/fhir/Patient/_history?_since=yesterday", None),
    ("GET", "/fhir/Patient/_history?_count=abc", None),
    ("GET", "/fhir/Patient/_history?_since=2020-01-01", None),
    ("DELETE", "/fhir/Patient", None),
    ("PATCH", "/fhir/Patient/x", None),
    ("PUT", "/fhir/Patient/x", []),
    ("PUT", "/fhir/Patient/x", "x"),
    ("PUT", "/fhir/Patient/x", {"resourceType": "Patient", "id": None}),
    ("PUT", "/fhir/Patient/x", {"resourceType": "Patient", "id": 5}),
    ("PUT", "/fhir/Patient?identifier=", GOOD),
    ("PUT", "/fhir/Patient?colour=blue", GOOD),
    ("POST", "/fhir/Patient", {"resourceType": None}),
    ("POST", "/fhir/Patient", {"resourceType": ["Patient"]}),
    ("POST", "/fhir/Patient", {**GOOD, "meta": "nope"}),
    ("POST", "/fhir/Patient", {**GOOD, "meta": {"versionId": 7}}),
    ("POST", "/fhir/Patient", {**GOOD, "_birthDate": "x"}),
    ("POST", "/fhir/Patient", {**GOOD, "extension": [{"url": "http://x", "valueDecimal": "1e99999"}]}),
    ("POST", "/fhir/Patient", {**GOOD, "extension": [{"url": "http://x", "valueInteger": 2**31}]}),
    ("POST", "/fhir/Patient", {**GOOD, "identifier": [{}]}),
    ("POST", "/fhir/Patient", {**GOOD, "telecom": []}),
    ("POST", "/fhir/Patient", {**GOOD, "name": [{"family": " "}]}),
    ("POST", "/fhir/Patient", {**GOOD, "name": [{"family": "\u0000"}]}),
    ("POST", "/fhir/Patient", {**GOOD, "birthDate": "0000-00-00"}),
    ("POST", "/fhir/Patient", {**GOOD, "contained": [{"resourceType": "Patient", "contained": []}]}),
    ("POST", "/fhir/Patient/_search", None),
]

# Accepted (ignored parameters are reported in the Bundle; a client id on create is ignored), never a 500.
_TOLERATED: list[tuple[str, str, Any]] = [
    ("GET", "/fhir/Patient?_count=99999999999999999999", None),
    ("GET", "/fhir/Patient?_sort=", None),
    ("GET", "/fhir/Patient?_include=Nope:nothing", None),
    ("GET", "/fhir/Patient?_include=*", None),
    ("GET", "/fhir/Patient?_revinclude=Patient", None),
    ("GET", "/fhir/Patient?general-practitioner=http://elsewhere.example/Practitioner/1", None),
    ("GET", "/fhir/Patient?family:nonsense=x", None),
    ("GET", "/fhir/Patient?_id=" + ",".join(["x"] * 2000), None),
    ("POST", "/fhir/Patient", {**GOOD, "id": "client-chosen-but-ignored"}),
]


@pytest.mark.parametrize(("method", "path", "body"), _HOSTILE)
def test_hostile_requests_never_500(clinic: Client, method: str, path: str, body: Any) -> None:
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["content"] = orjson.dumps(body)
    response = clinic.http.request(method, path, headers=clinic._h(None), **kwargs)
    assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
    assert response.json()["resourceType"] == "OperationOutcome"
    _nothing_stored(clinic)


@pytest.mark.parametrize(("method", "path", "body"), _TOLERATED)
def test_odd_but_tolerated_requests_never_500(clinic: Client, method: str, path: str, body: Any) -> None:
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["content"] = orjson.dumps(body)
    response = clinic.http.request(method, path, headers=clinic._h(None), **kwargs)
    assert response.status_code in (200, 201), (method, path, response.status_code, response.text)


def test_huge_integer_is_400(clinic: Client) -> None:
    raw = orjson.dumps({**GOOD, "multipleBirthInteger": 1}).replace(b":1}", b":" + str(2**70).encode() + b"}")
    assert str(2**70).encode() in raw
    _outcome(_post_raw(clinic, raw, **{"Content-Type": "application/fhir+json"}), 400)
    _nothing_stored(clinic)
