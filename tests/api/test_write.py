"""Writes: create, update, delete, transaction and batch Bundles, consents via the API."""

from consent.model import build_consent
from tests.community import (
    Community,
    RegisteredClient,
    claim,
    condition,
    generate_key,
    observation,
)


def count_rows(community: Community) -> int:
    from sqlalchemy import func, select

    from exchange.store.tables import ResourceRow

    with community.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ResourceRow)).scalar_one())


def test_create_update_vread_delete(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    obs = observation("ignored", "alice", "8867-4", "2025-01-01T08:00:00Z", 72, "/min")
    del obs["id"]
    created = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    assert created.headers["Location"].endswith(f"/Observation/{oid}/_history/1")
    obs["id"] = oid
    obs["valueQuantity"]["value"] = 75
    updated = community.http.put(f"/fhir/Observation/{oid}", json=obs,
                                 headers={**h, "If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    stale = community.http.put(f"/fhir/Observation/{oid}", json=obs,
                               headers={**h, "If-Match": 'W/"1"'})
    assert stale.status_code == 412  # R4: a stale If-Match is a failed precondition
    assert stale.json()["issue"][0]["code"] == "conflict"
    v1 = community.http.get(f"/fhir/Observation/{oid}/_history/1", headers=h).json()
    assert v1["valueQuantity"]["value"] == 72
    history = community.http.get(f"/fhir/Observation/{oid}/_history", headers=h).json()
    assert history["type"] == "history" and history["total"] == 2
    assert community.http.delete(f"/fhir/Observation/{oid}", headers=h).status_code == 204
    assert community.http.get(f"/fhir/Observation/{oid}", headers=h).status_code == 410
    search = community.http.get("/fhir/Observation", params={"code": "8867-4"}, headers=h)
    assert search.json()["total"] == 0


def test_read_only_scope_cannot_write(community: Community) -> None:
    """The missing scope is named, and the answer is the same whatever the target: a
    visible record, a hidden one or none at all."""
    h = community.headers("clinic-a", scope="system/*.rs")
    obs = observation("x1", "alice", "8867-4", "2025-01-01", 72, "/min")
    r = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert r.status_code == 403
    assert "system/Observation.c" in r.json()["issue"][0]["diagnostics"]
    answers = set()
    for oid in ("alice-glu-0", "carol-glu-0", "no-such"):
        obs["id"] = oid
        put = community.http.put(f"/fhir/Observation/{oid}", json=obs, headers=h)
        assert put.status_code == 403 and "system/Observation.u" in put.text
        gone = community.http.delete(f"/fhir/Observation/{oid}", headers=h)
        assert gone.status_code == 403 and "system/Observation.d" in gone.text
        answers.add((put.json()["issue"][0]["diagnostics"],
                     gone.json()["issue"][0]["diagnostics"]))
    assert len(answers) == 1


def test_clinic_cannot_write_into_a_record_it_may_not_see(community: Community) -> None:
    h = community.headers("clinic-b", scope="system/*.cruds")
    obs = observation("x2", "alice", "8867-4", "2025-01-01", 72, "/min")
    hidden = community.http.post("/fhir/Observation", json=obs, headers=h)
    obs["subject"]["reference"] = "Patient/nobody"
    missing = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert hidden.status_code == missing.status_code == 422
    assert hidden.json()["issue"][0]["diagnostics"] == missing.json()["issue"][0]["diagnostics"]
    assert community.http.delete("/fhir/Observation/alice-glu-0", headers=h).status_code == 404


def test_invalid_resource_names_the_element(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    obs = observation("x3", "alice", "8867-4", "2025-01-01", 72, "/min")
    obs["valueQuantity"]["value"] = "seventy-two"
    r = community.http.post("/fhir/Observation", json=obs, headers=h)
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["expression"] == ["Observation.valueQuantity.value"]
    assert "seventy-two" not in r.text


def test_wrong_media_type_and_broken_json(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    r = community.http.post("/fhir/Observation", content=b"<xml/>",
                            headers={**h, "Content-Type": "application/xml"})
    assert r.status_code == 415
    r = community.http.post("/fhir/Observation", content=b"{not json",
                            headers={**h, "Content-Type": "application/fhir+json"})
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def _transaction(entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_transaction_is_atomic_and_names_the_bad_entry(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    good = observation("t1", "alice", "8867-4", "2025-02-01", 70, "/min")
    bad = observation("t2", "alice", "8867-4", "2025-02-02", 71, "/min")
    bad["status"] = {"not": "a code"}
    before = count_rows(community)
    r = community.http.post("/fhir", json=_transaction([
        {"fullUrl": "urn:uuid:1", "resource": good,
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:2", "resource": bad,
         "request": {"method": "POST", "url": "Observation"}}]), headers=h)
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource.status")
    assert count_rows(community) == before


def test_transaction_denied_entry_stores_nothing(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    before = count_rows(community)
    r = community.http.post("/fhir", json=_transaction([
        {"resource": observation("t3", "alice", "8867-4", "2025-02-01", 70, "/min"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": observation("t4", "bob", "8867-4", "2025-02-01", 70, "/min"),
         "request": {"method": "POST", "url": "Observation"}}]), headers=h)
    assert r.status_code == 422
    assert count_rows(community) == before


def test_transaction_commits_everything_and_resolves_urn_references(
        community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    encounter = {"resourceType": "Encounter", "status": "finished",
                 "class": {"code": "AMB"}, "subject": {"reference": "Patient/alice"}}
    obs = observation("t5", "alice", "8867-4", "2025-03-01", 66, "/min")
    obs["encounter"] = {"reference": "urn:uuid:enc-1"}
    r = community.http.post("/fhir", json=_transaction([
        {"fullUrl": "urn:uuid:enc-1", "resource": encounter,
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": obs, "request": {"method": "POST", "url": "Observation"}}]), headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "transaction-response"
    enc_loc = body["entry"][0]["response"]["location"]
    obs_loc = body["entry"][1]["response"]["location"]
    assert body["entry"][0]["response"]["status"] == "201 Created"
    stored = community.http.get("/fhir/" + obs_loc.split("/_history")[0], headers=h).json()
    assert stored["encounter"]["reference"] == enc_loc.split("/_history")[0]


def test_batch_entries_succeed_or_fail_alone(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    bad = observation("b2", "alice", "8867-4", "2025-02-02", 71, "/min")
    bad["valueQuantity"] = "nope"
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": observation("b1", "alice", "8867-4", "2025-02-01", 70, "/min"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}}]}, headers=h)
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses[0] == "201 Created" and statuses[1] == "422"


def test_resident_grants_and_revokes_consent_through_the_api(community: Community) -> None:
    clinic = community.headers("clinic-a")
    assert community.http.get("/fhir/Patient/carol", headers=clinic).status_code == 404
    me = community.resident_headers("carol")
    consent = build_consent("carol", "Organization/clinic-a", ["TREAT"])
    created = community.http.post("/fhir/Consent", json=consent, headers=me)
    assert created.status_code == 201, created.text
    assert community.http.get("/fhir/Patient/carol", headers=clinic).status_code == 200
    cid = created.json()["id"]
    assert community.http.delete(f"/fhir/Consent/{cid}", headers=me).status_code == 204
    assert community.http.get("/fhir/Patient/carol", headers=clinic).status_code == 404


def test_clinic_cannot_create_or_change_consents(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    consent = build_consent("alice", "Organization/clinic-a", ["TREAT", "HPAYMT"])
    assert community.http.post("/fhir/Consent", json=consent, headers=h).status_code == 422
    mine = build_consent("carol", "Organization/clinic-b", ["TREAT"])
    assert community.http.post("/fhir/Consent", json=mine,
                               headers=community.resident_headers("alice")).status_code == 422


def test_consent_without_resident_or_rule_is_refused(community: Community) -> None:
    me = community.resident_headers("alice")
    consent = build_consent("alice", "Organization/clinic-a", ["TREAT"])
    del consent["provision"]["type"]
    r = community.http.post("/fhir/Consent", json=consent, headers=me)
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Consent.provision.type"]


def test_clinic_registers_a_new_resident(community: Community) -> None:
    h = community.headers("clinic-b", scope="system/*.cruds")
    new = {"resourceType": "Patient", "name": [{"family": "赵", "given": ["德明"]}],
           "gender": "male", "birthDate": "1944-02-02"}
    r = community.http.post("/fhir/Patient", json=new, headers=h)
    assert r.status_code == 201
    # Registered, but not visible until the resident consents.
    assert community.http.get(f"/fhir/Patient/{r.json()['id']}", headers=h).status_code == 404


def test_a_clinic_bills_only_what_payment_sees_whole(community: Community) -> None:
    """Payment writes claims where the resident consented to the clinic for payment, and
    never a Condition, which payment is shown only in part."""
    pem, jwk = generate_key("ES384", "billing-1")
    community.services.registry.add("billing", "billing", "Organization/clinic-a", "clinic",
                                    {"keys": [jwk]}, ["TREAT", "HPAYMT"], "system/*.cruds")
    community.clients["billing"] = RegisteredClient("billing", "ES384", jwk["kid"], pem)
    h = community.headers("billing", "HPAYMT", "system/*.cruds")
    bill = {k: v for k, v in claim("x", "alice", "2025-01-02").items() if k != "id"}
    assert community.http.post("/fhir/Claim", json=bill, headers=h).status_code == 422
    consent = build_consent("alice", "Organization/clinic-a", ["HPAYMT"])
    assert community.http.post("/fhir/Consent", json=consent,
                               headers=community.resident_headers("alice")).status_code == 201
    assert community.http.post("/fhir/Claim", json=bill, headers=h).status_code == 201
    diagnosis = condition("y", "alice", "I10", "2024-01-01")
    del diagnosis["id"]
    assert community.http.post("/fhir/Condition", json=diagnosis, headers=h).status_code == 422
