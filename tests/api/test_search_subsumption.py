"""``:below`` and ``:above`` on tokens over HTTP: HL7's own is-a code systems (an
Encounter's class in v3 ActCode) and ICD-10 Conditions, each asked also by callers who may
not see what it would find: subsumption matches nothing the plain search of the same
codes would not (another resident's record, a withheld label, a profile that hides codes).

Alice consents to clinic A (treatment, no sensitive class opened) and here to clinic B
with mental health (PSY) opened; Bob to clinic B, the insurer, and here to the lab
(research, pseudonymized) and the hub (care needs, which hides codes)."""

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consent.model import build_consent
from exchange.app import build_services, create_app
from exchange.decisions.labels import label_records
from exchange.fhir.references import RELATIVE_ONLY
from tests.community import Community, build_community, condition

ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def encounter(eid: str, pid: str, klass: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": ACT_CODE, "code": klass},
            "subject": {"reference": f"Patient/{pid}"}}


def coded(cid: str, pid: str, code: str, system: str = ICD10) -> dict[str, Any]:
    found = condition(cid, pid, code, "2020-01-01")
    found["code"]["coding"][0]["system"] = system
    return found


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Community]:
    community = build_community(tmp_path, k_anonymity=1)
    services = community.services
    records = []
    for pid in ("alice", "bob", "carol"):
        records += [
            coded(f"{pid}-e11", pid, "E11"),
            coded(f"{pid}-e11-9", pid, "E11.9"),
            coded(f"{pid}-e11-65", pid, "E11.65", ICD10_CM),  # an edition, spelled apart
            coded(f"{pid}-e119", pid, "e119", "urn:oid:2.16.840.1.113883.6.3"),
            coded(f"{pid}-e10-9", pid, "E10.9"),  # a sibling category: below neither
            coded(f"{pid}-f32-9", pid, "F32.9"),  # depression: labelled PSY
            encounter(f"{pid}-imp", pid, "IMP"),
            encounter(f"{pid}-acute", pid, "ACUTE"),
            encounter(f"{pid}-amb", pid, "AMB"),
        ]
    # labelled as a write through the gate would label them (F32.9 -> PSY)
    services.repository.ingest(label_records(services.decider, records, RELATIVE_ONLY))
    for pid, organization, purpose, labels in (
            ("alice", "Organization/clinic-b", "TREAT", ["PSY"]),
            ("bob", "Organization/lab", "HRESCH", None),
            ("bob", "Organization/hub", "CAREMGT", None)):
        r = community.http.post("/fhir/Consent", json=build_consent(
            pid, organization, [purpose], labels=labels),
            headers=community.resident_headers(pid))
        assert r.status_code == 201, r.text
    yield community
    services.engine.dispose()


def _search(community: Community, client: str, query: str,
            purpose: str = "TREAT") -> Any:
    return community.http.get(f"/fhir/{query}", headers=community.headers(client, purpose))


def _ids(community: Community, client: str, query: str, purpose: str = "TREAT") -> set[str]:
    r = _search(community, client, query, purpose)
    assert r.status_code == 200, (query, r.text)
    return {e["resource"]["id"] for e in r.json().get("entry", [])
            if e["search"]["mode"] == "match"}


HL7 = {
    f"class:below={ACT_CODE}|IMP": {"imp", "acute"},
    f"class:below={ACT_CODE}|ACUTE": {"acute"},
    f"class:below={ACT_CODE}|_ActEncounterCode": {"imp", "acute", "amb"},
    f"class:above={ACT_CODE}|ACUTE": {"imp", "acute"},
    f"class:above={ACT_CODE}|IMP": {"imp"},
    f"class:above={ACT_CODE}|AMB,{ACT_CODE}|NONAC": {"amb", "imp"},
}
ICD = {
    f"code:below={ICD10}|E11": {"e11", "e11-9", "e11-65", "e119"},
    f"code:below={ICD10_CM}|E11.9": {"e11-9", "e119"},
    "code:below=urn:oid:2.16.840.1.113883.6.90|E11.6": {"e11-65"},
    f"code:below={ICD10}|E11,{ICD10}|E10": {"e11", "e11-9", "e11-65", "e119", "e10-9"},
    f"code:above={ICD10}|E11.9": {"e11", "e11-9", "e119"},
    f"code:above={ICD10_CM}|E11.65": {"e11", "e11-65"},
    f"code:above={ICD10}|E11": {"e11"},
    f"code:below={ICD10}|E12": set(),
}


@pytest.mark.parametrize("query", sorted(HL7))
def test_below_and_above_on_an_hl7_code_system(world: Community, query: str) -> None:
    assert _ids(world, "clinic-a", f"Encounter?{query}") == {f"alice-{i}" for i in HL7[query]}
    # clinic B treats bob and alice: each finds only its own residents' records
    assert _ids(world, "clinic-b", f"Encounter?{query}") == {
        f"{pid}-{i}" for pid in ("alice", "bob") for i in HL7[query]}


@pytest.mark.parametrize("query", sorted(ICD))
def test_below_and_above_on_icd10_conditions(world: Community, query: str) -> None:
    assert _ids(world, "clinic-a", f"Condition?{query}") == {f"alice-{i}" for i in ICD[query]}
    # carol consented to nobody: none of hers, to anyone
    assert not any(i.startswith("carol") for i in _ids(world, "clinic-b", f"Condition?{query}"))


def test_a_withheld_label_stays_withheld_below_its_category(world: Community) -> None:
    query = f"Condition?code:below={ICD10}|F32"
    # clinic A may not see mental health: the depression below F32 is withheld, as it is
    # from the plain search for the code itself, and counts in no total
    assert _ids(world, "clinic-a", query) == set()
    assert _ids(world, "clinic-a", f"Condition?code={ICD10}|F32.9") == set()
    total = _search(world, "clinic-a", query + "&_summary=count").json()["total"]
    assert total == 0
    assert _ids(world, "clinic-a", f"Condition?code:above={ICD10}|F32.9") == set()
    # clinic B, opened mental health by alice (not by bob), finds hers in her records;
    # across both, the labels withheld for bob are withheld from the whole search, exactly
    # as from the plain search of the code
    for within in ("&patient=alice", ""):
        plain = _ids(world, "clinic-b", f"Condition?code={ICD10}|F32.9{within}")
        assert _ids(world, "clinic-b", query + within) == plain \
            == ({"alice-f32-9"} if within else set())
    assert _ids(world, "clinic-b", f"Condition?code:below={ICD10}|F32&patient=bob") == set()
    # and alice herself sees her own
    r = world.http.get(f"/fhir/{query}", headers=world.resident_headers("alice"))
    assert r.status_code == 200 and {e["resource"]["id"] for e in r.json()["entry"]} \
        == {"alice-f32-9"}


def test_another_residents_record_is_never_found_by_subsumption(world: Community) -> None:
    for query in (f"Condition?code:below={ICD10}|E11&patient=bob",
                  f"Condition?code:below={ICD10}|E11&patient=carol",
                  f"Condition?code:above={ICD10}|E11.65&patient=Patient/bob",
                  f"Encounter?class:below={ACT_CODE}|_ActEncounterCode&subject=carol",
                  f"Patient/bob/Condition?code:below={ICD10}|E11"):
        assert _ids(world, "clinic-a", query) == set(), query
    assert _ids(world, "insurer", f"Condition?code:below={ICD10}|E11", "HPAYMT") == {
        "bob-e11", "bob-e11-9", "bob-e11-65", "bob-e119"}


def test_a_pseudonymized_recipient_finds_no_more_than_by_the_plain_codes(
        world: Community) -> None:
    below = _ids(world, "lab", f"Condition?code:below={ICD10}|E11", "HRESCH")
    plain = set().union(*(_ids(world, "lab", f"Condition?code={system}|{code}", "HRESCH")
                          for system, code in ((ICD10, "E11"), (ICD10, "E11.9"),
                                               (ICD10_CM, "E11.65"),
                                               ("urn:oid:2.16.840.1.113883.6.3", "e119"))))
    assert len(below) == 4 and below == plain
    assert not any(i.startswith(("alice", "bob", "carol")) for i in below)  # pseudonyms
    # the hub's profile hides codes: refused unrun, as the plain code search is
    for query in (f"Condition?code:below={ICD10}|E11", f"Condition?code={ICD10}|E11"):
        r = _search(world, "hub", query, "CAREMGT")
        assert r.status_code == 400, r.text


@pytest.mark.parametrize("query", [
    "Observation?code:below=http://loinc.org|15074-8",
    "Observation?code:above=http://loinc.org|15074-8",
    "Condition?code:below=http://snomed.info/sct|35489007",
    "Condition?code:above=urn:oid:2.16.840.1.113883.6.96|35489007",
    "Condition?code:below=F32",
    "Condition?code:below=|F32",
    f"Condition?code:below={ICD10}|F30-F39",
    "Encounter?class:below=http://terminology.hl7.org/CodeSystem/v3-NotASystem|IMP",
])
def test_where_the_hierarchy_is_unknown_it_is_a_400_naming_the_parameter(
        world: Community, query: str) -> None:
    r = _search(world, "clinic-a", query)
    assert r.status_code == 400, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    said = outcome["issue"][0]["diagnostics"]
    name = query.split("?", 1)[1].split("=", 1)[0]
    assert name in said
    assert "hierarchy" in said or "system|code" in said


def test_a_store_indexed_before_is_refused_until_reindexed(world: Community) -> None:
    """ICD-10's places are index terms (form 3): a store of form 2 has none, and answers
    503 until ``exchange reindex`` writes them; HL7's expansions need nothing indexed."""
    settings = world.services.settings
    world.services.engine.dispose()
    with sqlite3.connect(settings.data_dir / "exchange.db") as conn:  # as form 2 wrote it
        conn.execute("DELETE FROM term_index WHERE param = 'code:below'")
        conn.execute("UPDATE index_form SET form = 2")
    services = build_services(settings, clock=world.clock)
    http = TestClient(create_app(services=services), raise_server_exceptions=False)
    query = f"/fhir/Condition?code:below={ICD10}|E11"
    try:
        r = http.get(query, headers=world.headers("clinic-a"))
        assert r.status_code == 503, r.text
        assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "index-outdated"
        services.repository.rebuild_indexes()
        r = http.get(query, headers=world.headers("clinic-a"))
        assert {e["resource"]["id"] for e in r.json()["entry"]} == {
            "alice-e11", "alice-e11-9", "alice-e11-65", "alice-e119"}
    finally:
        services.engine.dispose()
