"""Nested reverse chains (``_has:Encounter:patient:_has:Observation:encounter:code=…``)
over HTTP: each level is found by the caller's own search of its type, so a level never
matches through records the caller may not see: another resident's who did not consent to
it (another clinic's), a withheld label, a consent revoked since.

Alice consents to clinic A; Bob to clinic B; Carol to nobody.
"""

from typing import Any

import pytest

from consent.model import build_consent
from tests.community import Community, observation

LOINC = "http://loinc.org"
VISIT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}


def encounter(eid: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": eid, "status": "finished", "class": VISIT,
            "subject": {"reference": f"Patient/{pid}"}}


def reading(oid: str, pid: str, visit: str, label: str | None = None) -> dict[str, Any]:
    obs = observation(oid, pid, "8867-4", "2025-01-01T08:00:00Z", 72, "/min", label=label)
    obs["encounter"] = {"reference": f"Encounter/{visit}"}
    return obs


def report(rid: str, pid: str, code: str, results: list[str]) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{pid}"},
            "result": [{"reference": f"Observation/{r}"} for r in results]}


@pytest.fixture
def visits(community: Community) -> Community:
    """Alice and Bob each had a visit with a pulse reading. Alice's report 11111-1 rests
    on her reading; her report 22222-2 on a reading of Bob's filed under her visit; her
    report 33333-3 on a PSY-labelled reading of hers under a second visit. Bob's report
    44444-4 rests on a reading of Alice's filed under his visit."""
    community.services.repository.ingest([
        encounter("alice-visit", "alice"), encounter("alice-visit-2", "alice"),
        encounter("bob-visit", "bob")])
    community.services.repository.ingest([
        reading("alice-pulse", "alice", "alice-visit"),
        reading("bob-pulse", "bob", "bob-visit"),
        reading("bob-at-alice", "bob", "alice-visit"),
        reading("alice-psy-pulse", "alice", "alice-visit-2", label="PSY"),
        reading("alice-at-bob", "alice", "bob-visit")])
    community.services.repository.ingest([
        report("alice-report", "alice", "11111-1", ["alice-pulse"]),
        report("alice-report-bob", "alice", "22222-2", ["bob-at-alice"]),
        report("alice-report-psy", "alice", "33333-3", ["alice-psy-pulse"]),
        report("bob-report-alice", "bob", "44444-4", ["alice-at-bob"])])
    return community


def ids(community: Community, client: str, query: str) -> set[str]:
    r = community.http.get(f"/fhir/{query}", headers=community.headers(client))
    assert r.status_code == 200, (query, r.text)
    return {e["resource"]["id"] for e in r.json().get("entry", [])
            if e["search"]["mode"] == "match"}


PATIENT_BY_VISIT = "Patient?_has:Encounter:patient:_has:Observation:encounter:code=8867-4"
VISIT_BY_REPORT = "Encounter?_has:Observation:encounter:_has:DiagnosticReport:result:code="


def test_a_two_level_reverse_chain_finds_what_it_should(visits: Community) -> None:
    assert ids(visits, "clinic-a", PATIENT_BY_VISIT) == {"alice"}
    assert ids(visits, "clinic-b", PATIENT_BY_VISIT) == {"bob"}
    assert ids(visits, "clinic-a", VISIT_BY_REPORT + "11111-1") == {"alice-visit"}
    three = ("Patient?_has:Encounter:patient:_has:Observation:encounter:"
             "_has:DiagnosticReport:result:code=11111-1")
    assert ids(visits, "clinic-a", three) == {"alice"}


def test_a_level_never_matches_through_another_clinics_records(visits: Community) -> None:
    """Alice's report (visible to clinic A) rests on Bob's reading (not visible to it),
    filed under Alice's visit (visible): the middle level finds nothing, so neither does
    the search. The same for clinic B, through a reading of Alice's under Bob's visit."""
    assert ids(visits, "clinic-a", VISIT_BY_REPORT + "22222-2") == set()
    assert ids(visits, "clinic-b", VISIT_BY_REPORT + "44444-4") == set()
    # The reading is there: Bob's own clinic finds it, but not Alice's report on it.
    assert ids(visits, "clinic-b", "Observation?encounter=Encounter/alice-visit") == \
        {"bob-at-alice"}
    assert ids(visits, "clinic-b", VISIT_BY_REPORT + "22222-2") == set()


def test_a_level_never_matches_through_a_withheld_label(visits: Community) -> None:
    assert ids(visits, "clinic-a", VISIT_BY_REPORT + "33333-3") == set()


def test_a_level_stops_matching_when_its_resident_revokes(visits: Community) -> None:
    """Bob consents to clinic A too: his reading under Alice's visit now carries the
    chain; once he revokes, it no longer does, from the very next search."""
    bob = visits.resident_headers("bob")
    granted = visits.http.post("/fhir/Consent", headers=bob,
                               json=build_consent("bob", "Organization/clinic-a", ["TREAT"]))
    assert granted.status_code == 201, granted.text
    assert ids(visits, "clinic-a", VISIT_BY_REPORT + "22222-2") == {"alice-visit"}
    cid = granted.json()["id"]
    assert visits.http.delete(f"/fhir/Consent/{cid}", headers=bob).status_code == 204
    assert ids(visits, "clinic-a", VISIT_BY_REPORT + "22222-2") == set()


def test_nesting_is_limited(visits: Community) -> None:
    h = visits.headers("clinic-a")
    four = ("Patient?_has:Encounter:patient:_has:Observation:encounter:"
            "_has:DiagnosticReport:result:_has:Observation:subject:code=1")
    r = visits.http.get(f"/fhir/{four}", headers=h)
    assert r.status_code == 400
    assert "3 deep" in r.json()["issue"][0]["diagnostics"]
    for bad in ("Patient?_has:Encounter:patient:_has:Observation:subject:code=1",
                "Patient?_has:Encounter:patient:_has=1",
                "Patient?_has:Encounter:patient:_has:Observation:encounter=1",
                "Patient?_has::patient:code=1"):
        assert visits.http.get(f"/fhir/{bad}", headers=h).status_code == 400, bad


def test_each_level_rests_on_at_most_its_limit(visits: Community,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """One report resting on two readings: above a limit of one at the middle level, the
    search is refused (400, narrow it), as a single level above its limit is."""
    import exchange.gate.searches as searches

    visits.services.repository.ingest([report("alice-two", "alice", "55555-5",
                                              ["alice-pulse", "alice-at-bob"])])
    monkeypatch.setattr(searches, "HAS_LIMIT", 1)
    r = visits.http.get(f"/fhir/{VISIT_BY_REPORT}55555-5",
                        headers=visits.headers("clinic-a"))
    assert r.status_code == 400
    assert "at most 1 " in r.json()["issue"][0]["diagnostics"]
