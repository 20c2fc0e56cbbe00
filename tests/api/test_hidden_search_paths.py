"""A search never matches through what the caller is not shown, whatever carries it: a
modifier that reads free text the pseudonymized profile scrubs (``code:text=李``), or a
reverse chain joining through a reference that minimization drops or a profile hides
(found by an attacker: the hub's ``:text`` matched a name in ``code.text``, and the
insurer's ``_has`` joined through a Condition's ``asserter``, which it is not shown).

Bob consents to clinic B (treatment), the insurer (payment: Patient, Claim, Condition,
without the asserter) and here to the hub (care management, pseudonymized)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from consent.model import build_consent
from tests.community import LOINC, Community, build_community, condition

ICD10 = "http://hl7.org/fhir/sid/icd-10"


@pytest.fixture()
def bob_at_the_hub(tmp_path: Path) -> Iterator[Community]:
    community = build_community(tmp_path, k_anonymity=1)
    repo = community.services.repository
    repo.ingest([{"resourceType": "Practitioner", "id": "dr-x", "active": True,
                  "name": [{"family": "Xu"}]}])
    repo.ingest([
        {"resourceType": "Observation", "id": "bob-walk", "status": "final",
         "code": {"coding": [{"system": LOINC, "code": "41950-7"}],
                  "text": "steps walked with Li Jianguo and his daughter"},
         "subject": {"reference": "Patient/bob"},
         "performer": [{"reference": "Practitioner/dr-x"}],
         "effectiveDateTime": "2024-05-01T10:00:00+08:00",
         "valueQuantity": {"value": 3200, "unit": "steps"}},
        {**condition("bob-dm", "bob", "E11.9", "2019-02-01"),
         "asserter": {"reference": "Practitioner/dr-x"}}])
    for organization, purpose in (("Organization/hub", "CAREMGT"),
                                  ("Organization/lab", "HRESCH")):
        r = community.http.post("/fhir/Consent", json=build_consent(
            "bob", organization, [purpose]), headers=community.resident_headers("bob"))
        assert r.status_code == 201, r.text
    yield community
    community.services.engine.dispose()


def _ids(community: Community, client: str, purpose: str, query: str) -> list[str]:
    r = community.http.get(f"/fhir/{query}", headers=community.headers(client, purpose))
    assert r.status_code == 200, (query, r.text)
    return [e["resource"]["id"] for e in r.json().get("entry", [])
            if e["search"]["mode"] == "match"]


@pytest.mark.parametrize("query", [
    "Observation?code:text=Jianguo",
    "Observation?code:text=daughter",
    "Observation?code:text=steps",
])
def test_pseudonymized_recipients_cannot_match_on_text_their_profile_drops(
        bob_at_the_hub: Community, query: str) -> None:
    # clinic B, shown the record as it is, finds it by its text
    assert _ids(bob_at_the_hub, "clinic-b", "TREAT", query) == ["bob-walk"]
    # the lab (research) and the hub (care needs) are refused the search unrun (#15.4)
    for client, purpose in (("lab", "HRESCH"), ("hub", "CAREMGT")):
        r = bob_at_the_hub.http.get(f"/fhir/{query}",
                                    headers=bob_at_the_hub.headers(client, purpose))
        assert r.status_code == 400 and "Jianguo" not in r.text, r.text


def test_research_still_finds_the_reading_by_its_code(bob_at_the_hub: Community) -> None:
    found = _ids(bob_at_the_hub, "lab", "HRESCH", "Observation?code=41950-7")
    assert len(found) == 1 and found[0] != "bob-walk"  # a pseudonym, not the real id
    negated = _ids(bob_at_the_hub, "lab", "HRESCH", "Observation?code:not=15074-8")
    assert found[0] in negated
    assert _ids(bob_at_the_hub, "lab", "HRESCH",
                "Observation?code:missing=false&code=41950-7") == found
    # the hub receives no reading at all, only the facts derived from them
    assert _ids(bob_at_the_hub, "hub", "CAREMGT", "Observation") == []


def test_the_insurer_cannot_join_through_an_asserter_it_is_not_shown(
        bob_at_the_hub: Community) -> None:
    query = "Practitioner?_has:Condition:asserter:code=E11.9"
    assert _ids(bob_at_the_hub, "clinic-b", "TREAT", query) == ["dr-x"]
    assert _ids(bob_at_the_hub, "insurer", "HPAYMT", query) == []
    # the Condition itself the insurer does see, without its asserter
    r = bob_at_the_hub.http.get("/fhir/Condition/bob-dm",
                                headers=bob_at_the_hub.headers("insurer", "HPAYMT"))
    assert r.status_code == 200 and "asserter" not in r.json()


def test_the_hub_cannot_join_through_a_performer_it_sees_under_pseudonyms(
        bob_at_the_hub: Community) -> None:
    query = "Practitioner?_has:Observation:performer:code=41950-7"
    assert _ids(bob_at_the_hub, "clinic-b", "TREAT", query) == ["dr-x"]
    # the join reads a performer the profiles hide: refused unrun (#15.4)
    for client, purpose in (("lab", "HRESCH"), ("hub", "CAREMGT")):
        r = bob_at_the_hub.http.get(f"/fhir/{query}",
                                    headers=bob_at_the_hub.headers(client, purpose))
        assert r.status_code == 400, r.text
