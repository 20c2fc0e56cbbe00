"""Over HTTP: a code outside a required binding, or a broken safety invariant, is a 400 that
names the element, quotes nothing of the resource and stores nothing."""

from tests.api.test_write import count_rows
from tests.community import Community, observation


def test_an_invalid_status_is_400_named_and_nothing_is_stored(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    obs = observation("v1", "alice", "8867-4", "2025-01-01T08:00:00Z", 72, "/min")
    obs["status"] = "wang-xiuying-done"
    before = count_rows(community)
    r = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "code-invalid"
    assert issue["expression"] == ["Observation.status"]
    assert "wang-xiuying" not in r.text
    assert count_rows(community) == before


def test_an_update_with_a_malformed_reference_is_refused(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    obs = observation("v2", "alice", "8867-4", "2025-01-01T08:00:00Z", 72, "/min")
    created = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    body = {**obs, "id": oid, "performer": [{"reference": "Practitioner/李 医生"}]}
    r = community.http.put(f"/fhir/Observation/{oid}", json=body, headers=h)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["Observation.performer[0].reference"]
    assert "李" not in r.text
    stored = community.http.get(f"/fhir/Observation/{oid}", headers=h).json()
    assert stored["meta"]["versionId"] == "1"


def test_a_transaction_with_one_bad_code_stores_nothing(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    good = observation("v3", "alice", "8867-4", "2025-02-01", 70, "/min")
    bad = observation("v4", "alice", "8867-4", "2025-02-02", 71, "/min")
    bad["effectivePeriod"] = {"start": "2025-02-03", "end": "2025-02-02"}
    del bad["effectiveDateTime"]
    before = count_rows(community)
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                           "entry": [
        {"resource": good, "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}}]}, headers=h)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == [
        "Bundle.entry[1].resource.effectivePeriod.start"]
    assert count_rows(community) == before


def test_a_batch_entry_with_a_bad_code_fails_alone(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    bad = observation("v6", "alice", "8867-4", "2025-02-02", 71, "/min")
    bad["valueQuantity"] = {"comparator": "<", "unit": "/min"}
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": observation("v5", "alice", "8867-4", "2025-02-01", 70, "/min"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}}]}, headers=h)
    assert r.status_code == 200
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "400"]
    outcome = entries[1]["response"]["outcome"]["issue"][0]
    assert outcome["expression"] == ["Bundle.entry[1].resource.valueQuantity.value"]
