"""A record of a resident's type that names no resident and refers to none (a supply
order, a quality measure's report, the canteen kitchen's fridge temperature) is held for
the organization whose client wrote it (policies/exchange/held): its clients read,
search, change and delete it; to everyone else it is a missing id, in every interaction
that could tell."""

from typing import Any

import pytest

from tests.community import Community

FHIR = "application/fhir+json"
LOCAL = "https://fhir.community-exchange.example/CodeSystem/kitchen"


def fridge(value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOCAL, "code": "fridge-temp"}]},
            "effectiveDateTime": "2024-05-01T08:00:00+08:00",
            "valueQuantity": {"value": value, "unit": "Cel",
                              "system": "http://unitsofmeasure.org", "code": "Cel"}}


def _writer(community: Community, client: str) -> dict[str, str]:
    return {**community.headers(client, "TREAT", "system/*.cruds"), "Content-Type": FHIR}


@pytest.fixture
def held(community: Community) -> str:
    r = community.http.post("/fhir/Observation", json=fridge(4.0),
                            headers=_writer(community, "clinic-a"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _issue(r: Any) -> Any:
    return {k: v for k, v in r.json()["issue"][0].items() if k != "details"}


def test_the_holders_clients_work_with_it_as_with_any_record(community: Community,
                                                              held: str) -> None:
    http, a = community.http, _writer(community, "clinic-a")
    got = http.get(f"/fhir/Observation/{held}", headers=a)
    assert got.status_code == 200 and got.json()["valueQuantity"]["value"] == 4.0
    found = http.get(f"/fhir/Observation?code={LOCAL}|fridge-temp", headers=a).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [held]
    # beside the residents' records it may see, in one search
    both = http.get("/fhir/Observation?_count=100", headers=a).json()
    ids = {e["resource"]["id"] for e in both["entry"]}
    assert held in ids and "alice-glu-0" in ids and "bob-glu-0" not in ids
    changed = http.put(f"/fhir/Observation/{held}", json={**fridge(5.0), "id": held},
                       headers={**a, "If-Match": 'W/"1"'})
    assert changed.status_code == 200, changed.text
    history = http.get(f"/fhir/Observation/{held}/_history", headers=a).json()
    assert history["total"] == 2
    typed = http.get("/fhir/Observation/_history", headers=a).json()
    assert held in {e["resource"]["id"] for e in typed["entry"] if "resource" in e}
    assert http.delete(f"/fhir/Observation/{held}", headers=a).status_code in (200, 204)
    assert http.get(f"/fhir/Observation/{held}", headers=a).status_code == 410


@pytest.mark.parametrize("other", ["clinic-b", "insurer", "hub"])
def test_to_any_other_organization_it_is_a_missing_id(community: Community, held: str,
                                                      other: str) -> None:
    http = community.http
    purpose = {"clinic-b": "TREAT", "insurer": "HPAYMT", "hub": "CAREMGT"}[other]
    h = community.headers(other, purpose)
    for path in (f"/fhir/Observation/{held}", f"/fhir/Observation/{held}/_history",
                 f"/fhir/Observation/{held}/_history/1"):
        got, missing = http.get(path, headers=h), http.get(
            path.replace(held, "no-such-record"), headers=h)
        assert got.status_code == missing.status_code == 404, path
        assert _issue(got) == _issue(missing)
    if other != "hub":  # the hub's profile refuses this search before it runs
        found = http.get(f"/fhir/Observation?code={LOCAL}|fridge-temp", headers=h).json()
        assert found["total"] == 0
    typed = http.get("/fhir/Observation/_history", headers=h).json()
    assert held not in {e["resource"]["id"] for e in typed.get("entry", [])
                        if "resource" in e}


def test_another_clinic_cannot_change_delete_or_find_it_by_condition(
        community: Community, held: str) -> None:
    http, b = community.http, _writer(community, "clinic-b")
    for method in ("put", "delete"):
        def call(rid: str, method: str = method) -> Any:
            body = {**fridge(-20.0), "id": rid}
            return http.put(f"/fhir/Observation/{rid}", json=body, headers=b) \
                if method == "put" else http.delete(f"/fhir/Observation/{rid}", headers=b)
        got = call(held)
        assert got.status_code == 404, (method, got.text)
    # the held record is as it was
    row = community.services.repository.read("Observation", held)
    assert row is not None and row.version_id == 1 and not row.deleted
    # a conditional create matches none of another organization's records
    made = http.post("/fhir/Observation", json=fridge(-20.0), headers={
        **b, "If-None-Exist": f"code={LOCAL}|fridge-temp"})
    assert made.status_code == 201 and made.json()["id"] != held
    # and the record it made is clinic-b's, not clinic-a's
    a = community.headers("clinic-a")
    assert http.get(f"/fhir/Observation/{made.json()['id']}", headers=a).status_code == 404


def test_residents_never_see_it(community: Community, held: str) -> None:
    http, me = community.http, community.resident_headers("alice")
    assert http.get(f"/fhir/Observation/{held}", headers=me).status_code == 404
    everything = http.get("/fhir/Patient/alice/$everything", headers=me).json()
    assert held not in {e["resource"]["id"] for e in everything["entry"]}


def test_a_residents_record_stays_theirs(community: Community) -> None:
    http, a = community.http, _writer(community, "clinic-a")
    body = community.http.get("/fhir/Observation/alice-glu-0", headers=a).json()
    body.pop("subject")
    r = http.put("/fhir/Observation/alice-glu-0", json=body, headers=a)
    assert r.status_code == 422, r.text
    assert "stays in their record" in r.json()["issue"][0]["diagnostics"]
    row = community.services.repository.read("Observation", "alice-glu-0")
    assert row is not None and row.version_id == 1 and row.patient_id == "alice"


def test_a_record_pointing_at_an_unresolvable_residents_record_is_refused(
        community: Community) -> None:
    """Not held: it is about a resident the writer cannot name; refused alike for a record
    hidden from it (another resident's, or another organization's held one) and a missing
    one."""
    http, b = community.http, _writer(community, "clinic-b")
    theirs = http.post("/fhir/Observation", json=fridge(4.0),
                       headers=_writer(community, "clinic-a")).json()["id"]

    def provenance(target: str) -> Any:
        return http.post("/fhir/Provenance", headers=b, json={
            "resourceType": "Provenance", "target": [{"reference": target}],
            "recorded": "2024-05-01T08:00:00+08:00",
            "agent": [{"who": {"reference": "Organization/clinic-b"}}]})

    answers = [provenance(t) for t in (f"Observation/{theirs}", "Observation/alice-glu-0",
                                       "Observation/no-such-record")]
    assert {r.status_code for r in answers} == {422}
    assert len({str(_issue(r)) for r in answers}) == 1
    # one pointing at its own held record is held with it
    mine = http.post("/fhir/Observation", json=fridge(3.0), headers=b).json()["id"]
    assert provenance(f"Observation/{mine}").status_code == 201


def test_each_use_is_recorded_with_the_decision_it_rests_on(community: Community,
                                                            held: str) -> None:
    ledger = community.services.ledger
    a, b = community.headers("clinic-a"), community.headers("clinic-b")  # tokens first
    before = ledger.size()
    assert community.http.get(f"/fhir/Observation/{held}", headers=a).status_code == 200
    assert community.http.get(f"/fhir/Observation/{held}", headers=b).status_code == 404
    assert ledger.size() == before + 2
    mine, theirs = ledger.read(before + 1), ledger.read(before + 2)
    assert mine is not None and theirs is not None
    assert (mine["status"], mine["outcome"]) == (200, "success")
    assert [d["reasons"] for d in mine["decisions"]] == [["held_by_requester"]]
    assert mine["decisions"][0]["input"]["holder"] == "Organization/clinic-a"
    assert mine["residents"] == theirs["residents"] == []
    assert (theirs["status"], theirs["outcome"]) == (404, "denied")
    assert not any(d["allow"] for d in theirs["decisions"])


def test_another_organizations_held_records_cost_a_search_nothing(
        community: Community, monkeypatch: pytest.MonkeyPatch) -> None:
    """``_security:missing`` asks each record within reach for its own marker: never
    another organization's held records, whose number would show in the time taken
    (found by an attacker: 7 -> 83 ms with 3,000 of clinic-a's)."""
    import exchange.store.dependents as dependents

    asked: list[str] = []
    marker = dependents.unlabelled_marker

    def counting(blind: Any, owner: str | None, record: str) -> str:
        asked.append(record)
        return marker(blind, owner, record)

    monkeypatch.setattr(dependents, "unlabelled_marker", counting)
    b = community.headers("clinic-b")
    query = "/fhir/Observation?_security:missing=true&_summary=count"
    assert community.http.get(query, headers=b).status_code == 200
    before = len(asked)
    a = _writer(community, "clinic-a")
    for value in range(5):
        assert community.http.post("/fhir/Observation", json=fridge(float(value)),
                                   headers=a).status_code == 201
    asked.clear()
    assert community.http.get(query, headers=b).status_code == 200
    assert len(asked) == before
    # while clinic-a's own search asks its held records too
    asked.clear()
    mine = community.http.get(query, headers=community.headers("clinic-a")).json()
    assert sum(r.startswith("Observation/") for r in asked) >= 5 and mine["total"] >= 5
