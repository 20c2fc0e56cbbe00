"""GET entries in batch and transaction Bundles, answered by the same read and search as a
request of their own (a hidden record is the same 404 as a missing one), and an empty
transaction answered as R4 says."""

from typing import Any

from tests.community import Community, observation


def post(community: Community, bundle: dict[str, Any], scope: str = "system/*.cruds") -> Any:
    r = community.http.post("/fhir", json=bundle,
                            headers=community.headers("clinic-a", scope=scope))
    assert r.status_code == 200, r.text
    return r.json()


def get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def test_a_batch_of_reads(community: Community) -> None:
    body = post(community, {"resourceType": "Bundle", "type": "batch", "entry": [
        get("Patient/alice"), get("Observation/alice-glu-0/_history/1"),
        get("Observation?patient=alice&code=15074-8"), get("Observation/carol-glu-0"),
        get("Observation/no-such"), get("Patient/alice/_history")]})
    assert body["type"] == "batch-response"
    read, vread, search, hidden, missing, other = body["entry"]
    assert read["response"]["status"] == "200 OK" and read["resource"]["id"] == "alice"
    assert read["response"]["etag"] == 'W/"1"'
    assert vread["resource"]["id"] == "alice-glu-0"
    assert search["resource"]["type"] == "searchset" and search["resource"]["total"] == 3
    assert hidden["response"]["status"] == missing["response"]["status"] == "404"
    assert hidden["response"]["outcome"] == missing["response"]["outcome"]
    assert other["response"]["status"] == "422"  # history is not answered in a Bundle


def test_reads_in_a_batch_are_shaped_and_recorded_once(community: Community) -> None:
    ledger = community.services.ledger
    headers = community.headers("clinic-a")
    before = ledger.size()
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "batch",
                                           "entry": [get("Observation?patient=alice")]},
                            headers=headers)
    assert r.status_code == 200
    found = r.json()["entry"][0]["resource"]
    # The PSY-labelled observation is withheld here as in a search of its own.
    assert {e["resource"]["id"] for e in found["entry"]} == {
        "alice-glu-0", "alice-glu-1", "alice-glu-2"}
    assert ledger.size() == before + 1
    entry = ledger.read(before + 1)
    assert entry is not None and entry["action"] == "batch" and entry["residents"] == ["alice"]


def test_a_transaction_reads_after_its_writes(community: Community) -> None:
    obs = observation("x", "alice", "8867-4", "2025-01-01T08:00:00Z", 72, "/min")
    del obs["id"]
    body = post(community, {"resourceType": "Bundle", "type": "transaction", "entry": [
        get("Observation?code=8867-4"),
        {"fullUrl": "urn:uuid:5f0c3c58-8d3b-4a4f-9a0e-3f1b7d2c9e01", "resource": obs,
         "request": {"method": "POST", "url": "Observation"}}]})
    assert body["type"] == "transaction-response"
    found, created = body["entry"]
    assert created["response"]["status"] == "201 Created"
    assert found["resource"]["total"] == 1  # the write it followed is seen


def test_an_entry_with_a_stale_if_match_fails_the_transaction(community: Community) -> None:
    current = community.http.get("/fhir/Observation/alice-glu-0",
                                 headers=community.headers("clinic-a")).json()
    r = community.http.post("/fhir", headers=community.headers("clinic-a",
                                                                scope="system/*.cruds"),
                            json={"resourceType": "Bundle", "type": "transaction", "entry": [
                                {"resource": current, "request": {
                                    "method": "PUT", "url": "Observation/alice-glu-0",
                                    "ifMatch": 'W/"9"'}}]})
    assert r.status_code == 412


def test_an_unhonoured_condition_is_refused_not_ignored(community: Community) -> None:
    obs = observation("x", "alice", "8867-4", "2025-01-01T08:00:00Z", 72, "/min")
    r = community.http.post("/fhir", headers=community.headers("clinic-a",
                                                                scope="system/*.cruds"),
                            json={"resourceType": "Bundle", "type": "transaction", "entry": [
                                {"resource": obs, "request": {
                                    "method": "POST", "url": "Observation",
                                    "ifNoneMatch": "*"}}]})
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].request.ifNoneMatch"]


def test_a_conditional_create_in_a_transaction(community: Community) -> None:
    """ifNoneExist in an entry, as a client registering a resident and their readings
    sends it: a visible match is reused (and references to its fullUrl point at it), no
    match creates, a hidden match is no match, more than one is a 412."""
    h = {**community.headers("clinic-a", scope="system/*.cruds"),
         "Content-Type": "application/fhir+json"}
    reading = observation("x", "alice", "8867-4", "2025-03-01T08:00:00Z", 72, "/min")
    reading.pop("id")
    reading["subject"] = {"reference": "urn:uuid:4a7c1b9e-0d2f-4c55-9a53-6d2b8f0e1c11"}

    def bundle(criteria: str, readings: bool = True) -> dict:
        return {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:4a7c1b9e-0d2f-4c55-9a53-6d2b8f0e1c11",
             "resource": {"resourceType": "Patient", "name": [{"family": "王"}]},
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria}},
            *([{"resource": reading, "request": {"method": "POST", "url": "Observation"}}]
              if readings else [])]}

    # No match: registered (a new resident, whose readings wait for their consent).
    r = community.http.post("/fhir", json=bundle("identifier=http://example.org/x|none",
                                                 readings=False), headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"] == "201 Created"
    r = community.http.post("/fhir", json=bundle("_id=alice"), headers=h)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["response"]["location"].startswith("Patient/alice/")
    rid = second["response"]["location"].split("/")[1]
    stored = community.http.get(f"/fhir/Observation/{rid}", headers=h).json()
    assert stored["subject"]["reference"] == "Patient/alice"
    # bob is hidden from clinic-a: his Patient is no match, so a new one is made.
    r = community.http.post("/fhir", json=bundle("_id=bob", readings=False), headers=h)
    assert r.json()["entry"][0]["response"]["status"] == "201 Created"
    glucose = observation("y", "alice", "15074-8", "2025-03-01T08:00:00Z", 5.0)
    glucose.pop("id")
    r = community.http.post("/fhir", headers=h, json={
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": glucose, "request": {"method": "POST", "url": "Observation",
                                              "ifNoneExist": "code=15074-8"}}]})
    assert r.status_code == 412  # alice's three readings match


def test_an_empty_transaction(community: Community) -> None:
    for kind in ("transaction", "batch"):
        body = post(community, {"resourceType": "Bundle", "type": kind, "entry": []})
        assert body == {"resourceType": "Bundle", "type": f"{kind}-response"}
        body = post(community, {"resourceType": "Bundle", "type": kind})
        assert body == {"resourceType": "Bundle", "type": f"{kind}-response"}
