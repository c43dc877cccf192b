"""Wraparound's conformance content: valid R4, internally consistent, and the demo directory."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class  # noqa: TID251

import fhir_profiles as fp

CONFORMANCE = fp.load_conformance()
# The latest version of each canonical (the Questionnaire has more than one published version).
BY_URL = {r["url"]: fp.load_by_url(r["url"]) for r in CONFORMANCE}
DEMO = fp.load_demo_directory()
PARTNERS = ("Positive East", "Metro", "Positively UK", "Plushealth", "Sophia Forum", "NAZ Project")


def _walk(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _walk(item.get("item", []))


def _codes(system: str) -> set[str]:
    return {c["code"] for c in BY_URL[system]["concept"]}


def _questionnaire(version: str = fp.ASSESSMENT_VERSION) -> dict[str, Any]:
    return fp.load_by_url(f"{fp.ASSESSMENT_URL}|{version}")


@pytest.mark.parametrize("resource", CONFORMANCE, ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_conformance_resource_is_valid_r4(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    # The first version of a canonical has the canonical's last segment as id; later published versions
    # of it (a new resource each, so the old one stays loadable) add the version: name-1-1-0.
    url, version = resource["url"], resource["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert url == f"{fp.BASE}/{resource['resourceType']}/{resource['id']}" or (
        resource["id"] == f"{url.rsplit('/', 1)[1]}-{version.replace('.', '-')}"
    )
    assert resource["status"] == "active"
    assert resource["publisher"] == "Wraparound"
    assert resource["date"]


def test_conformance_ids_and_urls_are_unique() -> None:
    keys = Counter((r["resourceType"], r["id"]) for r in CONFORMANCE)
    assert max(keys.values()) == 1
    versions = Counter((r["url"], r["version"]) for r in CONFORMANCE)
    assert max(versions.values()) == 1
    assert {u for u, _ in versions if u != fp.ASSESSMENT_URL} == set(BY_URL) - {fp.ASSESSMENT_URL}
    assert [v for u, v in sorted(versions) if u == fp.ASSESSMENT_URL] == list(fp.ASSESSMENT_VERSIONS)


def test_constants_name_shipped_resources() -> None:
    for url in (
        fp.SERVICE_CATEGORY_SYSTEM,
        fp.NEED_SYSTEM,
        fp.NEED_URGENCY_SYSTEM,
        fp.TASK_BUSINESS_STATUS_SYSTEM,
        fp.ENDPOINT_CONNECTION_TYPE_SYSTEM,
        fp.CONSENT_MODEL_SYSTEM,
        fp.DATA_ORIGIN_SYSTEM,
        fp.PEER_SUPPORT_OUTCOME_SYSTEM,
        fp.POZQOL_RESPONSE_SYSTEM,
        fp.ASSESSMENT_INSTRUMENT_SYSTEM,
        fp.ASSESSMENT_SCORE_SYSTEM,
        fp.ASSESSMENT_BAND_SYSTEM,
        fp.FLAG_CODE_SYSTEM,
        fp.CONSENT_MODEL_URL,
        fp.NEED_TO_SERVICE_CATEGORY_URL,
        fp.SERVICE_CATEGORY_TO_SNOMED_URL,
        fp.ASSESSMENT_URL,
    ):
        assert url in BY_URL, url
    assert fp.load_by_url(fp.ASSESSMENT_URL)["version"] == fp.ASSESSMENT_VERSION == fp.ASSESSMENT_VERSIONS[-1]
    assert fp.load_by_url(f"{fp.ASSESSMENT_URL}|1.0.0")["id"] == "wellbeing-needs-assessment"


def test_load_by_url_unknown_raises() -> None:
    with pytest.raises(KeyError):
        fp.load_by_url(f"{fp.BASE}/CodeSystem/nope")
    with pytest.raises(KeyError):
        fp.load_by_url(f"{fp.ASSESSMENT_URL}|9.9.9")


def test_loader_returns_fresh_copies() -> None:
    fp.load_conformance()[0]["id"] = "changed"
    fp.load_demo_directory()["entry"].clear()
    assert fp.load_conformance()[0]["id"] != "changed"
    assert fp.load_demo_directory()["entry"]


def test_code_systems_are_complete_and_value_sets_resolve() -> None:
    for resource in CONFORMANCE:
        if resource["resourceType"] == "CodeSystem":
            assert resource["count"] == len(resource["concept"])
            assert all(c.get("display") for c in resource["concept"])
            if "valueSet" in resource:
                assert resource["valueSet"] in BY_URL
        if resource["resourceType"] == "ValueSet":
            for include in resource["compose"]["include"]:
                if include["system"].startswith(fp.BASE):
                    assert include["system"] in BY_URL


def test_required_codes_present() -> None:
    assert _codes(fp.SERVICE_CATEGORY_SYSTEM) == {
        "peer-support", "welfare-benefits-debt", "housing", "immigration-advice", "mental-wellbeing", "food",
        "employment", "isolation-befriending", "stigma-support", "alcohol-drugs-chemsex", "sexual-health",
        "legal-advice", "carers-support",
    }  # fmt: skip
    assert all(c.get("definition") for c in BY_URL[fp.SERVICE_CATEGORY_SYSTEM]["concept"])
    assert len(_codes(fp.NEED_SYSTEM)) == 13
    assert _codes(fp.ENDPOINT_CONNECTION_TYPE_SYSTEM) == {"webhook"}
    assert _codes(fp.CONSENT_MODEL_SYSTEM) == {"opt-in", "opt-out"}
    assert {"contact-attempted", "first-appointment", "did-not-attend", "waitlisted", "contacted",
            "closed-no-contact"} <= _codes(fp.TASK_BUSINESS_STATUS_SYSTEM)  # fmt: skip


def test_consent_model_extension_binds_the_value_set() -> None:
    sd = BY_URL[fp.CONSENT_MODEL_URL]
    assert sd["context"] == [{"type": "element", "expression": "HealthcareService"}]
    value = next(e for e in sd["differential"]["element"] if e["id"] == "Extension.value[x]")
    assert value["type"] == [{"code": "code"}]
    assert BY_URL[value["binding"]["valueSet"]]["compose"]["include"] == [{"system": fp.CONSENT_MODEL_SYSTEM}]


def test_need_map_covers_every_need_with_known_categories() -> None:
    cmap = BY_URL[fp.NEED_TO_SERVICE_CATEGORY_URL]
    (group,) = cmap["group"]
    assert {e["code"] for e in group["element"]} == _codes(fp.NEED_SYSTEM)
    categories = _codes(fp.SERVICE_CATEGORY_SYSTEM)
    targets = {e["code"]: {t["code"] for t in e["target"]} for e in group["element"]}
    assert all(t <= categories for t in targets.values())
    assert targets["money-benefits"] == targets["debt"] == {"welfare-benefits-debt"}
    assert {"stigma-support", "peer-support"} <= targets["internalised-stigma"]
    assert {"isolation-befriending", "peer-support"} <= targets["isolation"]


def test_snomed_map_maps_only_with_codes_or_explains() -> None:
    (group,) = BY_URL[fp.SERVICE_CATEGORY_TO_SNOMED_URL]["group"]
    assert {e["code"] for e in group["element"]} == _codes(fp.SERVICE_CATEGORY_SYSTEM)
    mapped = {}
    for element in group["element"]:
        (target,) = element["target"]
        if target["equivalence"] == "unmatched":
            assert "code" not in target
            assert target["comment"]
        else:
            mapped[element["code"]] = target["code"]
    assert mapped["isolation-befriending"] == "871731000000106"
    assert all(code.isdigit() for code in mapped.values())


@pytest.mark.parametrize("version", fp.ASSESSMENT_VERSIONS)
def test_questionnaire_link_ids_unique_and_enable_when_resolves(version: str) -> None:
    q = _questionnaire(version)
    assert (q["name"], q["subjectType"]) == ("WellbeingNeedsAssessment", ["Patient"])
    items = list(_walk(q["item"]))
    counts = Counter(i["linkId"] for i in items)
    assert max(counts.values()) == 1
    for item in items:
        for condition in item.get("enableWhen", []):
            assert condition["question"] in counts
    assert [g["linkId"] for g in q["item"]] == ["ons4", "phq4", "pozqol", "needs", "peer-support"]
    assert all(g.get("code") and g.get("text") for g in q["item"])


@pytest.mark.parametrize("version", fp.ASSESSMENT_VERSIONS)
def test_questionnaire_scored_items(version: str) -> None:
    items = {i["linkId"]: i for i in _walk(_questionnaire(version)["item"])}
    for link_id in ("ons4-satisfied", "ons4-worthwhile", "ons4-happy", "ons4-anxious"):
        limits = {e["url"].rsplit("/", 1)[1]: e["valueInteger"] for e in items[link_id]["extension"]}
        assert (items[link_id]["type"], limits) == ("integer", {"minValue": 0, "maxValue": 10})
    for n in range(1, 5):
        ordinals = [
            ext["valueDecimal"]
            for option in items[f"phq4-{n}"]["answerOption"]
            for ext in option["valueCoding"]["extension"]
            if ext["url"] == "http://hl7.org/fhir/StructureDefinition/ordinalValue"
        ]
        assert ordinals == [0, 1, 2, 3]
    for link_id in ("phq4-total", "phq4-anxiety", "phq4-depression"):
        assert items[link_id]["readOnly"] is True
        assert "calculatedExpression" in items[link_id]["extension"][0]["url"]
    assert items["pozqol"]["required"] is False
    assert "non-commercial" in items["pozqol"]["text"]
    assert sum(1 for i in items if i.startswith("pozqol-")) == 13


def test_questionnaire_has_a_need_item_per_need_with_follow_ups() -> None:
    items = {i["linkId"]: i for i in _walk(_questionnaire()["item"])}
    for code in _codes(fp.NEED_SYSTEM):
        item = items[f"need-{code}"]
        assert item["type"] == "boolean"
        assert item["code"][0] == {
            "system": fp.NEED_SYSTEM,
            "code": code,
            "display": item["code"][0]["display"],
        }
        children = {c["linkId"]: c for c in item["item"]}
        assert set(children) == {
            f"need-{code}-urgency",
            f"need-{code}-has-help",
            f"need-{code}-wants-referral",
        }
        for child in children.values():
            assert child["enableWhen"] == [
                {"question": f"need-{code}", "operator": "=", "answerBoolean": True}
            ]
    outcome = items["peer-support-outcome"]
    assert outcome["enableWhen"][0]["question"] == "peer-support-offered"
    assert {o["valueCoding"]["code"] for o in outcome["answerOption"]} == {
        "accepted",
        "declined",
        "already-has",
    }


def _demo_resources() -> list[dict[str, Any]]:
    return [e["resource"] for e in DEMO["entry"]]


def test_demo_directory_is_valid_r4() -> None:
    bundle = get_fhir_model_class("Bundle").model_validate(DEMO)
    assert bundle.model_dump()["type"] == "transaction"
    for resource in _demo_resources():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_demo_directory_names_partners_and_clinics() -> None:
    orgs = [r for r in _demo_resources() if r["resourceType"] == "Organization"]
    names = {o["name"] for o in orgs}
    assert set(PARTNERS) <= names
    clinics = [o for o in orgs if any(i["system"] == "https://fhir.nhs.uk/Id/ods-organization-code"
                                      for i in o["identifier"])]  # fmt: skip
    assert len(clinics) == 2
    assert all(c["name"].startswith("Demo Clinic") for c in clinics)


def test_demo_directory_is_tagged_and_idempotent_by_identifier() -> None:
    tag = {"system": fp.DATA_ORIGIN_SYSTEM, "code": "demo"}
    slugs = []
    for entry in DEMO["entry"]:
        resource = entry["resource"]
        assert any(t.items() >= tag.items() for t in resource["meta"]["tag"])
        (slug,) = [
            i["value"] for i in resource["identifier"] if i["system"] == fp.DIRECTORY_IDENTIFIER_SYSTEM
        ]
        slugs.append(slug)
        assert entry["fullUrl"].startswith("urn:uuid:")
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}?identifier={fp.DIRECTORY_IDENTIFIER_SYSTEM}|{slug}",
        }
    assert len(slugs) == len(set(slugs))
    assert any(t["code"] == "demo" for t in DEMO["meta"]["tag"])


def test_demo_services_belong_to_partners_with_consent_models() -> None:
    full_urls = {e["fullUrl"]: e["resource"] for e in DEMO["entry"]}
    categories = _codes(fp.SERVICE_CATEGORY_SYSTEM)
    per_partner: Counter[str] = Counter()
    for resource in _demo_resources():
        if resource["resourceType"] != "HealthcareService":
            continue
        provider = full_urls[resource["providedBy"]["reference"]]
        per_partner[provider["name"]] += 1
        (coding,) = resource["category"][0]["coding"]
        assert coding["system"] == fp.SERVICE_CATEGORY_SYSTEM
        assert coding["code"] in categories
        (ext,) = [e for e in resource["extension"] if e["url"] == fp.CONSENT_MODEL_URL]
        assert ext["valueCode"] == ("opt-out" if coding["code"] == "peer-support" else "opt-in")
        assert "demo" in resource["name"]
    assert set(per_partner) == set(PARTNERS)
    assert all(1 <= n <= 3 for n in per_partner.values())
