"""Search modifiers and common parameters, each over HTTP, each also asked by callers who
may not see the records it would find: a modifier never widens what a caller may see."""

from typing import Any

import pytest

from tests.community import Community, observation

LOINC = "http://loinc.org"
SECURITY = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _ids(community: Community, client: str, query: str, purpose: str = "TREAT") -> set[str]:
    r = community.http.get(f"/fhir/{query}", headers=community.headers(client, purpose))
    assert r.status_code == 200, (query, r.text)
    return {e["resource"]["id"] for e in r.json().get("entry", [])
            if e["search"]["mode"] == "match"}


@pytest.fixture
def marked(community: Community) -> Community:
    """Each resident gets a blood pressure reading with a display, a profile, a tag and a
    performer named by identifier only."""
    records: list[dict[str, Any]] = []
    for pid in ("alice", "bob", "carol"):
        bp = observation(f"{pid}-bp", pid, "85354-9", "2024-02-02T08:00:00+08:00", 130)
        bp["code"]["coding"][0]["display"] = "Blood pressure panel"
        bp["meta"] = {"profile": ["http://example.org/fhir/StructureDefinition/bp"],
                      "tag": [{"system": "urn:example:tag", "code": "home-reading"}]}
        bp["performer"] = [{"identifier": {"system": "urn:example:staff", "value": "n-7"}}]
        bp["component"] = [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                            "valueQuantity": {"value": 130, "unit": "mm[Hg]"}}]
        records.append(bp)
    community.services.repository.ingest(records)
    return community


QUERIES = {
    "not": ("Observation?code:not=http://loinc.org|15074-8", {"alice-bp"}),
    "missing=true": ("Observation?encounter:missing=true&code=85354-9", {"alice-bp"}),
    "missing=false": ("Observation?performer:missing=false", {"alice-bp"}),
    "text": ("Observation?code:text=blood", {"alice-bp"}),
    "text, two words in any order": ("Observation?code:text=panel blood", {"alice-bp"}),
    "text, a word it lacks": ("Observation?code:text=blood sugar", set()),
    "combo-code by the code": ("Observation?combo-code=http://loinc.org|85354-9",
                               {"alice-bp"}),
    "combo-code by a component": ("Observation?combo-code=http://loinc.org|8480-6",
                                  {"alice-bp"}),
    "combo-code:text": ("Observation?combo-code:text=blood", {"alice-bp"}),
    "combo-code:missing": ("Observation?combo-code:missing=false&code=85354-9",
                           {"alice-bp"}),
    "contains": ("Patient?name:contains=秀", {"alice"}),
    "contains, two words": ("Patient?name:contains=王,zzz", {"alice"}),
    "exact": ("Patient?family:exact=王", {"alice"}),
    "identifier": ("Observation?performer:identifier=urn:example:staff|n-7", {"alice-bp"}),
    "below": ("Observation?_profile:below=http://example.org/fhir", {"alice-bp"}),
    "above": ("Observation?_profile:above="
              "http://example.org/fhir/StructureDefinition/bp/v2", {"alice-bp"}),
    "tag": ("Observation?_tag=urn:example:tag|home-reading", {"alice-bp"}),
    "subject as any type": ("Observation?subject=alice&code=85354-9", {"alice-bp"}),
}


@pytest.mark.parametrize("case", sorted(QUERIES))
def test_a_modifier_finds_what_the_caller_may_see_and_nothing_else(
        marked: Community, case: str) -> None:
    query, expected = QUERIES[case]
    assert _ids(marked, "clinic-a", query) == expected
    # alice consented to clinic-a only: clinic-b, asking the very same, finds nothing of
    # hers (bob's twin records, where the query fits them, are his to show it), and the
    # hub, under its profile, finds none of these.
    assert not any(i.startswith("alice") for i in _ids(marked, "clinic-b", query))
    # (under its profile a search on what the profile hides is refused unrun: #15.4)
    hub = marked.http.get(f"/fhir/{query}", headers=marked.headers("hub", "CAREMGT"))
    assert hub.status_code == 400 or not [e for e in hub.json().get("entry", [])
                                          if e["search"]["mode"] == "match"], hub.text
    if query.startswith("Observation") and "alice" not in query:  # the same for bob
        assert _ids(marked, "clinic-b", query) == {i.replace("alice", "bob")
                                                   for i in expected}


def test_a_withheld_label_is_never_found_by_any_modifier(community: Community) -> None:
    for query in ("Observation?_security=" + SECURITY + "|PSY",
                  "Observation?code=44249-1", "Observation?code:missing=false",
                  "Observation?code:not=http://loinc.org|15074-8",
                  "Observation?_security:not=" + SECURITY + "|PSY"):
        assert not any(i.endswith("-psy") for i in _ids(community, "clinic-a", query)), query


def test_a_search_never_reaches_past_what_minimization_keeps(community: Community) -> None:
    """The insurer is shown bob's name, gender and birth date, not his address or phone:
    it finds him by what it is shown, never by what it is not."""
    assert _ids(community, "insurer", "Patient?gender=male", "HPAYMT") == {"bob"}
    for query in ("Patient?address-city=杭州市", "Patient?phone=13587654321",
                  "Patient?address:missing=false", "Patient?telecom:missing=false",
                  "Patient?address-city:contains=杭"):
        assert _ids(community, "insurer", query, "HPAYMT") == set(), query


def test_modifiers_that_need_a_terminology_are_refused_saying_so(community: Community) -> None:
    r = community.http.get("/fhir/Observation?code:below=http://loinc.org|85354",
                           headers=community.headers("clinic-a"))
    assert r.status_code == 400
    assert "terminology" in r.json()["issue"][0]["diagnostics"]


def test_a_reverse_chain_rests_only_on_what_the_caller_may_see(community: Community) -> None:
    """_has finds residents through records of theirs the caller could find itself: never
    through a withheld label, another resident's record or a type its purpose excludes."""
    glucose = "Patient?_has:Observation:patient:code=15074-8"
    assert _ids(community, "clinic-a", glucose) == {"alice"}
    assert _ids(community, "clinic-b", glucose) == {"bob"}
    # alice-psy exists, with this code, and is withheld from clinic-a by its label.
    assert _ids(community, "clinic-a", "Patient?_has:Observation:patient:code=44249-1") == set()
    # payment does not open Observations: the insurer learns nothing through them.
    assert _ids(community, "insurer", glucose, "HPAYMT") == set()
    assert _ids(community, "clinic-a", "Patient?_has:Condition:patient:code=I10") == {"alice"}
    h = community.headers("clinic-a")
    for bad in ("Patient?_has:Observation:patient:_has:Observation:subject:code=1",
                "Patient?_has:Observation:status:code=1", "Patient?_has:Observation=1"):
        assert community.http.get(f"/fhir/{bad}", headers=h).status_code == 400, bad


def test_a_chain_rests_only_on_what_the_caller_may_see(community: Community) -> None:
    """Found by an attacker: chains matched what minimization hides, labels withheld, and
    residents the caller may not see. Now a chain goes through the caller's own search of
    the chained type."""
    # The insurer is shown bob's name but not his phone or address.
    assert _ids(community, "insurer", "Claim?patient.name=李", "HPAYMT") == {"bob-claim"}
    for query in ("Claim?patient.phone=13587654321", "Claim?patient.address-city=杭州市",
                  "Claim?patient.telecom=13587654321"):
        assert _ids(community, "insurer", query, "HPAYMT") == set(), query
    # An Observation of alice's whose focus is bob, whom clinic-a may not see.
    focus = observation("alice-focus", "alice", "8867-4", "2025-01-01", 70, "/min")
    focus["focus"] = [{"reference": "Patient/bob"}]
    community.services.repository.ingest([focus])
    assert _ids(community, "clinic-a", "Observation?focus:Patient.name=李") == set()
    assert _ids(community, "clinic-a", "Observation?focus:Patient.gender=male") == set()
    assert _ids(community, "clinic-a", "Observation?subject:Patient.name=王") >= {"alice-focus"}
