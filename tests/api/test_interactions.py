"""R4's interactions beyond plain CRUD, over HTTP: conditional create, update and delete,
JSON Patch, HEAD, conditional reads, Prefer. Each conditional one is also tried against a
record the caller may not see: it behaves as no match, never reveals it, never changes it.

Alice consents to clinic A; Carol to nobody (her records are hidden from every clinic).
"""

from typing import Any

from tests.community import RESIDENT_ID, Community, observation

CRUDS = "system/*.cruds"


def writer(community: Community) -> dict[str, str]:
    return community.headers("clinic-a", scope=CRUDS)


def new_observation(pid: str, code: str = "8867-4", value: float = 72) -> dict[str, Any]:
    obs = observation("ignored", pid, code, "2025-01-01T08:00:00Z", value, "/min")
    del obs["id"]
    obs["identifier"] = [{"system": "urn:example:obs", "value": f"{pid}-{code}"}]
    return obs


def count(community: Community, query: str) -> int:
    """How many resources match, whoever may see them (straight from the store)."""
    from exchange.fhir.search import parse_search

    rtype, _, qs = query.partition("?")
    from urllib.parse import parse_qsl

    total, _ = community.services.repository.search(
        parse_search(rtype, parse_qsl(qs)), None)
    return total


def stored(community: Community, rtype: str, rid: str) -> dict[str, Any]:
    import orjson

    row = community.services.repository.read(rtype, rid)
    assert row is not None
    body: dict[str, Any] = orjson.loads(row.body) if row.body else {}
    return body


# -- conditional create ---------------------------------------------------------------

def test_conditional_create_none_one_many(community: Community) -> None:
    h = writer(community)
    obs = new_observation("alice")
    criteria = "identifier=urn:example:obs|alice-8867-4"
    first = community.http.post("/fhir/Observation", json=obs,
                                headers={**h, "If-None-Exist": criteria})
    assert first.status_code == 201, first.text
    again = community.http.post("/fhir/Observation", json=obs,
                                headers={**h, "If-None-Exist": criteria})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]  # the existing one, nothing created
    assert count(community, "Observation?identifier=urn:example:obs|alice-8867-4") == 1
    many = community.http.post("/fhir/Observation", json=obs,
                               headers={**h, "If-None-Exist": "patient=alice"})
    assert many.status_code == 412
    assert many.json()["issue"][0]["code"] == "multiple-matches"
    bad = community.http.post("/fhir/Observation", json=obs,
                              headers={**h, "If-None-Exist": "nonsense=1"})
    assert bad.status_code == 400  # an unknown criterion is never ignored
    # Criteria sent as a query on POST (not R4) are refused, not ignored into a duplicate.
    query = community.http.post("/fhir/Observation?identifier=urn:example:obs|alice-8867-4",
                                json=obs, headers=h)
    assert query.status_code == 400
    assert count(community, "Observation?identifier=urn:example:obs|alice-8867-4") == 1


def test_conditional_create_does_not_see_a_hidden_match(community: Community) -> None:
    """Carol's record is hidden from clinic B: matching it would tell it exists. Clinic B
    cannot write into her record either, so the create is refused exactly as for a
    resident that does not exist, and nothing of hers is returned or changed."""
    h = community.headers("clinic-b", scope=CRUDS)
    obs = new_observation("carol")
    hidden = community.http.post("/fhir/Observation", json=obs,
                                 headers={**h, "If-None-Exist": "_id=carol-glu-0"})
    obs["subject"]["reference"] = "Patient/nobody"
    missing = community.http.post("/fhir/Observation", json=obs,
                                  headers={**h, "If-None-Exist": "_id=no-such"})
    assert hidden.status_code == missing.status_code == 422
    assert hidden.json()["issue"][0]["diagnostics"] == \
        missing.json()["issue"][0]["diagnostics"]
    assert "carol-glu-0" not in hidden.text


def test_conditional_create_of_a_visible_resident_ignores_hidden_matches(
        community: Community) -> None:
    """Criteria that match only a hidden record (Carol's) are no match for clinic A: it
    creates its own, in Alice's record, and learns nothing of Carol's."""
    h = writer(community)
    obs = new_observation("alice", code="15074-8")
    r = community.http.post("/fhir/Observation", json=obs,
                            headers={**h, "If-None-Exist": "_id=carol-glu-0"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] != "carol-glu-0"
    assert stored(community, "Observation", "carol-glu-0")["subject"]["reference"] == \
        "Patient/carol"


# -- conditional update ---------------------------------------------------------------

def test_conditional_update_one_none_many(community: Community) -> None:
    h = writer(community)
    obs = new_observation("alice")
    created = community.http.post("/fhir/Observation", json=obs, headers=h).json()
    obs["valueQuantity"]["value"] = 80
    one = community.http.put("/fhir/Observation?identifier=urn:example:obs|alice-8867-4",
                             json=obs, headers=h)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == created["id"] and one.json()["meta"]["versionId"] == "2"
    other = new_observation("alice", code="9279-1")
    none = community.http.put("/fhir/Observation?identifier=urn:example:obs|alice-9279-1",
                              json=other, headers=h)
    assert none.status_code == 201  # no match and no id: created
    many = community.http.put("/fhir/Observation?patient=alice", json=other, headers=h)
    assert many.status_code == 412
    wrong_id = {**obs, "id": "alice-glu-0"}
    r = community.http.put("/fhir/Observation?identifier=urn:example:obs|alice-8867-4",
                           json=wrong_id, headers=h)
    assert r.status_code == 422  # the id is not that of the one match
    stale = community.http.put("/fhir/Observation?identifier=urn:example:obs|alice-8867-4",
                               json=obs, headers={**h, "If-Match": 'W/"1"'})
    assert stale.status_code == 412


def test_conditional_update_never_changes_a_hidden_match(community: Community) -> None:
    h = writer(community)  # clinic A may not see Carol
    before = stored(community, "Observation", "carol-glu-0")
    body = {**before, "valueQuantity": {"value": 1, "unit": "mmol/L"}}
    hidden = community.http.put("/fhir/Observation?_id=carol-glu-0", json=body, headers=h)
    missing = community.http.put("/fhir/Observation?_id=no-such",
                                 json={**body, "id": "no-such"}, headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["issue"][0]["diagnostics"] == \
        missing.json()["issue"][0]["diagnostics"]
    assert stored(community, "Observation", "carol-glu-0") == before


# -- conditional delete ---------------------------------------------------------------

def test_conditional_delete_one_none_many_hidden(community: Community) -> None:
    h = writer(community)
    community.http.post("/fhir/Observation", json=new_observation("alice"), headers=h)
    one = community.http.delete("/fhir/Observation?identifier=urn:example:obs|alice-8867-4",
                                headers=h)
    assert one.status_code == 204
    assert count(community, "Observation?identifier=urn:example:obs|alice-8867-4") == 0
    many = community.http.delete("/fhir/Observation?patient=alice", headers=h)
    assert many.status_code == 412
    hidden = community.http.delete("/fhir/Observation?_id=carol-glu-0", headers=h)
    missing = community.http.delete("/fhir/Observation?_id=no-such", headers=h)
    assert hidden.status_code == missing.status_code == 204
    assert hidden.content == missing.content == b""
    assert not community.services.repository.read("Observation", "carol-glu-0").deleted


# -- JSON Patch -----------------------------------------------------------------------

PATCH = "application/json-patch+json"


def test_json_patch_is_an_update(community: Community) -> None:
    h = {**writer(community), "Content-Type": PATCH}
    ops = [{"op": "replace", "path": "/valueQuantity/value", "value": 6.6}]
    r = community.http.patch("/fhir/Observation/alice-glu-0", json=ops,
                             headers={**h, "If-Match": 'W/"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["valueQuantity"]["value"] == 6.6 and r.json()["meta"]["versionId"] == "2"
    entry = community.services.ledger.read(community.services.ledger.size())
    assert entry is not None and entry["action"] == "patch" and entry["residents"] == ["alice"]
    stale = community.http.patch("/fhir/Observation/alice-glu-0", json=ops,
                                 headers={**h, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    invalid = [{"op": "replace", "path": "/status", "value": 7}]
    r = community.http.patch("/fhir/Observation/alice-glu-0", json=invalid, headers=h)
    assert r.status_code == 422 and r.json()["issue"][0]["expression"]  # validated
    moved = [{"op": "replace", "path": "/subject/reference", "value": "Patient/carol"}]
    r = community.http.patch("/fhir/Observation/alice-glu-0", json=moved, headers=h)
    assert r.status_code == 422  # decided on the resident after, too: Carol is hidden
    assert stored(community, "Observation", "alice-glu-0")["subject"]["reference"] == \
        "Patient/alice"
    assert community.http.patch("/fhir/Observation/alice-glu-0", json={"op": "x"},
                                headers=h).status_code == 400
    r = community.http.patch("/fhir/Observation/alice-glu-0", json=ops,
                             headers={**writer(community), "Content-Type": "application/json"})
    assert r.status_code == 415


def test_json_patch_on_a_hidden_record_is_a_missing_one(community: Community) -> None:
    h = {**writer(community), "Content-Type": PATCH}
    # A test operation would otherwise be an oracle for what the record holds.
    ops = [{"op": "test", "path": "/valueQuantity/value", "value": 5.4}]
    hidden = community.http.patch("/fhir/Observation/carol-glu-0", json=ops, headers=h)
    missing = community.http.patch("/fhir/Observation/no-such", json=ops, headers=h)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["issue"][0]["diagnostics"] == \
        missing.json()["issue"][0]["diagnostics"]
    read_only = community.headers("clinic-a", scope="system/*.rs")
    r = community.http.patch("/fhir/Observation/alice-glu-0", json=ops,
                             headers={**read_only, "Content-Type": PATCH})
    assert r.status_code == 403 and "system/Observation.u" in r.text


# -- reads: HEAD, If-None-Match, If-Modified-Since -----------------------------------

def test_head_and_conditional_reads(community: Community) -> None:
    h = community.headers("clinic-a")
    got = community.http.get("/fhir/Observation/alice-glu-0", headers=h)
    head = community.http.head("/fhir/Observation/alice-glu-0", headers=h)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["ETag"] == got.headers["ETag"] == 'W/"1"'
    assert community.http.head("/fhir/Observation/carol-glu-0", headers=h).status_code == 404
    assert community.http.head("/fhir/Observation/no-such", headers=h).status_code == 404
    assert community.http.head("/fhir/Observation/alice-glu-0/_history/1",
                               headers=h).status_code == 200
    same = community.http.get("/fhir/Observation/alice-glu-0",
                              headers={**h, "If-None-Match": 'W/"1"'})
    assert same.status_code == 304 and same.content == b""
    changed = community.http.get("/fhir/Observation/alice-glu-0",
                                 headers={**h, "If-None-Match": 'W/"7"'})
    assert changed.status_code == 200 and changed.json()["id"] == "alice-glu-0"
    since = community.http.get("/fhir/Observation/alice-glu-0",
                               headers={**h, "If-Modified-Since": got.headers["Last-Modified"]})
    assert since.status_code == 304
    older = community.http.get("/fhir/Observation/alice-glu-0",
                               headers={**h, "If-Modified-Since":
                                        "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200
    # A condition never turns a hidden record into anything but a missing one.
    for rid in ("carol-glu-0", "no-such"):
        r = community.http.get(f"/fhir/Observation/{rid}",
                               headers={**h, "If-None-Match": "*"})
        assert r.status_code == 404


def test_conditional_reads_are_recorded_once(community: Community) -> None:
    h = community.headers("clinic-a")
    ledger = community.services.ledger
    before = ledger.size()
    community.http.get("/fhir/Observation/alice-glu-0", headers={**h, "If-None-Match": "*"})
    community.http.head("/fhir/Observation/alice-glu-0", headers=h)
    assert ledger.size() == before + 2
    first, second = ledger.read(before + 1), ledger.read(before + 2)
    assert first is not None and second is not None
    assert first["status"] == 304 and first["residents"] == ["alice"]
    assert second["request"]["method"] == "HEAD" and second["action"] == "read"


# -- Prefer ---------------------------------------------------------------------------

def test_prefer_return(community: Community) -> None:
    h = writer(community)
    minimal = community.http.post("/fhir/Observation", json=new_observation("alice"),
                                  headers={**h, "Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["Location"] and minimal.headers["ETag"] == 'W/"1"'
    outcome = community.http.post("/fhir/Observation", json=new_observation("alice", "9279-1"),
                                  headers={**h, "Prefer": "return=OperationOutcome"})
    assert outcome.status_code == 201
    assert outcome.json()["resourceType"] == "OperationOutcome"
    full = community.http.post("/fhir/Observation", json=new_observation("alice", "8310-5"),
                               headers={**h, "Prefer": "return=representation"})
    assert full.json()["resourceType"] == "Observation"
    oid = full.json()["id"]
    updated = community.http.put(f"/fhir/Observation/{oid}", json=full.json(),
                                 headers={**h, "Prefer": "return=minimal"})
    assert updated.status_code == 200 and updated.content == b""
    assert updated.headers["ETag"] == 'W/"2"'


# -- $everything by POST --------------------------------------------------------------

def test_everything_by_post(community: Community) -> None:
    h = community.headers("clinic-a")
    got = community.http.get("/fhir/Patient/alice/$everything", headers=h).json()
    posted = community.http.post("/fhir/Patient/alice/$everything", headers=h)
    assert posted.status_code == 200, posted.text
    assert posted.json()["total"] == got["total"] > 1
    empty = community.http.post("/fhir/Patient/alice/$everything", headers=h,
                                json={"resourceType": "Parameters"})
    assert empty.status_code == 200
    asked = community.http.post("/fhir/Patient/alice/$everything", headers=h, json={
        "resourceType": "Parameters", "parameter": [{"name": "_type", "valueString": "x"}]})
    assert asked.status_code == 400  # not silently ignored
    hidden = community.http.post("/fhir/Patient/carol/$everything", headers=h)
    missing = community.http.post("/fhir/Patient/nobody/$everything", headers=h)
    assert hidden.status_code == missing.status_code == 404


# -- a Patient identified by a business identifier ------------------------------------

def test_conditional_create_of_a_patient_by_identifier(community: Community) -> None:
    """Registering a resident twice by their id number: the second is answered with the
    first only while the clinic may see them (before consent it may not: then R4's
    "no match" applies and a second registration is made, as a search would show none)."""
    h = writer(community)
    criteria = f"identifier={RESIDENT_ID}|330106194203081228"
    r = community.http.post("/fhir/Patient", headers={**h, "If-None-Exist": criteria},
                            json={"resourceType": "Patient", "identifier": [
                                {"system": RESIDENT_ID, "value": "330106194203081228"}]})
    assert r.status_code == 200 and r.json()["id"] == "alice"
