"""Conditional updates and deletes inside transaction and batch Bundles (``PUT`` or
``DELETE Type?criteria``), over HTTP, matched as the same interaction alone: one visible
match is updated or deleted; none creates (an update without an id) or does nothing (a
delete); more than one is a 412, which fails a whole transaction and only its own entry in
a batch. A record the caller may not see (another resident who did not consent to it, a
withheld label) is no match: never changed, never deleted, and answered exactly as a
missing one.

Alice consents to clinic A; Bob to clinic B; Carol to nobody.
"""

from typing import Any

import orjson

from tests.community import Community, observation

CRUDS = "system/*.cruds"
SYSTEM = "urn:example:obs"
NEW = "urn:uuid:9d1f6a3e-2b7c-4e0a-8f51-3c6d2e9b7a14"


def headers(community: Community, client: str = "clinic-a") -> dict[str, str]:
    return community.headers(client, scope=CRUDS)


def reading(pid: str, key: str, value: float = 72) -> dict[str, Any]:
    obs = observation("x", pid, "8867-4", "2025-01-01T08:00:00Z", value, "/min")
    del obs["id"]
    obs["identifier"] = [{"system": SYSTEM, "value": key}]
    return obs


def put(url: str, resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": resource, "request": {"method": "PUT", "url": url}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def delete(url: str) -> dict[str, Any]:
    return {"request": {"method": "DELETE", "url": url}}


def derived_from(target: str, pid: str = "alice") -> dict[str, Any]:
    """A POST entry whose ``derivedFrom`` refers to another entry's fullUrl."""
    obs = observation("x", pid, "8480-6", "2025-01-01T08:05:00Z", 120, "mm[Hg]")
    del obs["id"]
    obs["derivedFrom"] = [{"reference": target}]
    return {"resource": obs, "request": {"method": "POST", "url": "Observation"}}


def post_bundle(community: Community, kind: str, entries: list[dict[str, Any]],
                client: str = "clinic-a") -> Any:
    return community.http.post("/fhir", json={"resourceType": "Bundle", "type": kind,
                                              "entry": entries},
                               headers=headers(community, client))


def stored(community: Community, rtype: str, rid: str) -> dict[str, Any] | None:
    row = community.services.repository.read(rtype, rid)
    if row is None or row.deleted:
        return None
    body: dict[str, Any] = orjson.loads(row.body)
    return body


def rows(community: Community) -> int:
    """Every version of every resource the store holds, whoever may see them."""
    from sqlalchemy import text

    with community.services.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM resource")).scalar_one())


def created_id(entry: dict[str, Any]) -> str:
    return str(entry["response"]["location"].split("/")[1])


def seed(community: Community, key: str = "alice-pulse") -> str:
    r = community.http.post("/fhir/Observation", json=reading("alice", key),
                            headers=headers(community))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# -- conditional update ---------------------------------------------------------------

def test_a_conditional_update_with_one_match_updates_it(community: Community) -> None:
    rid = seed(community)
    r = post_bundle(community, "transaction", [
        put(f"Observation?identifier={SYSTEM}|alice-pulse", reading("alice", "alice-pulse", 80),
            full_url=NEW),
        derived_from(NEW)])
    assert r.status_code == 200, r.text
    updated, other = r.json()["entry"]
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["location"] == f"Observation/{rid}/_history/2"
    body = stored(community, "Observation", rid)
    assert body is not None and body["valueQuantity"]["value"] == 80
    # The other entry's reference to the fullUrl points at the resource matched.
    derived = stored(community, "Observation", created_id(other))
    assert derived is not None
    assert derived["derivedFrom"] == [{"reference": f"Observation/{rid}"}]


def test_a_conditional_update_with_no_match_creates(community: Community) -> None:
    r = post_bundle(community, "transaction", [
        put(f"Observation?identifier={SYSTEM}|alice-new", reading("alice", "alice-new"),
            full_url=NEW),
        derived_from(NEW)])
    assert r.status_code == 200, r.text
    created, other = r.json()["entry"]
    assert created["response"]["status"] == "201 Created"
    rid = created_id(created)
    assert stored(community, "Observation", rid) is not None
    derived = stored(community, "Observation", created_id(other))
    assert derived is not None
    assert derived["derivedFrom"] == [{"reference": f"Observation/{rid}"}]


def test_a_conditional_update_naming_an_id_that_matches_nothing_is_a_missing_id(
        community: Community) -> None:
    """No update as create, as for the interaction alone: the id would otherwise tell a
    hidden resource (Carol's) from a missing one."""
    before = rows(community)
    hidden = {**reading("alice", "x"), "id": "carol-glu-0"}
    missing = {**reading("alice", "x"), "id": "no-such"}
    a = post_bundle(community, "transaction", [put("Observation?_id=carol-glu-0", hidden)])
    b = post_bundle(community, "transaction", [put("Observation?_id=no-such", missing)])
    assert a.status_code == b.status_code == 404
    assert a.json()["issue"][0]["diagnostics"] == b.json()["issue"][0]["diagnostics"]
    assert rows(community) == before


def test_a_conditional_update_with_several_matches_fails_the_whole_transaction(
        community: Community) -> None:
    before = rows(community)
    r = post_bundle(community, "transaction", [
        {"resource": reading("alice", "alice-first"),
         "request": {"method": "POST", "url": "Observation"}},
        put("Observation?patient=alice&code=15074-8", reading("alice", "alice-many"))])
    assert r.status_code == 412, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "multiple-matches"
    assert issue["expression"] == ["Bundle.entry[1]"]
    assert rows(community) == before  # nothing of the transaction is stored


def test_a_conditional_update_does_not_match_what_the_caller_may_not_see(
        community: Community) -> None:
    """Carol's reading (no consent to clinic A) and Alice's PSY-labelled one (withheld) are
    no match: a new reading is created in Alice's record, exactly as for criteria that
    match nothing, and the hidden ones are untouched."""
    carol = stored(community, "Observation", "carol-glu-0")
    psy = stored(community, "Observation", "alice-psy")
    answers = []
    for criteria in ("_id=carol-glu-0", "_id=alice-psy", "_id=no-such"):
        r = post_bundle(community, "transaction", [
            put(f"Observation?{criteria}", reading("alice", "alice-hidden"))])
        assert r.status_code == 200, r.text
        (entry,) = r.json()["entry"]
        assert created_id(entry) not in ("carol-glu-0", "alice-psy")
        answers.append(entry["response"]["status"])
        assert "carol" not in r.text
    assert answers == ["201 Created"] * 3
    assert stored(community, "Observation", "carol-glu-0") == carol
    assert stored(community, "Observation", "alice-psy") == psy


def test_a_conditional_update_whose_id_is_not_its_match_is_refused(
        community: Community) -> None:
    rid = seed(community)
    r = post_bundle(community, "transaction", [
        put(f"Observation?identifier={SYSTEM}|alice-pulse",
            {**reading("alice", "alice-pulse"), "id": "alice-glu-0"})])
    assert r.status_code == 422
    assert r.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.id"]
    body = stored(community, "Observation", rid)
    assert body is not None and body["meta"]["versionId"] == "1"


def test_a_stale_if_match_on_a_conditional_update_fails_the_transaction(
        community: Community) -> None:
    seed(community)
    entry = put(f"Observation?identifier={SYSTEM}|alice-pulse", reading("alice", "alice-pulse"))
    entry["request"]["ifMatch"] = 'W/"7"'
    assert post_bundle(community, "transaction", [entry]).status_code == 412


# -- conditional delete ---------------------------------------------------------------

def test_a_conditional_delete_one_none_several(community: Community) -> None:
    rid = seed(community)
    r = post_bundle(community, "transaction", [
        delete(f"Observation?identifier={SYSTEM}|alice-pulse"),
        delete(f"Observation?identifier={SYSTEM}|nothing")])
    assert r.status_code == 200, r.text
    one, none = r.json()["entry"]
    assert one["response"]["status"] == none["response"]["status"] == "204 No Content"
    assert stored(community, "Observation", rid) is None
    before = rows(community)
    r = post_bundle(community, "transaction", [
        put(f"Observation?identifier={SYSTEM}|alice-other", reading("alice", "alice-other")),
        delete("Observation?patient=alice&code=15074-8")])
    assert r.status_code == 412
    assert r.json()["issue"][0]["code"] == "multiple-matches"
    assert rows(community) == before
    assert stored(community, "Observation", "alice-glu-0") is not None


def test_a_conditional_delete_never_deletes_what_the_caller_may_not_see(
        community: Community) -> None:
    answers = {}
    for criteria in ("_id=carol-glu-0", "_id=alice-psy", "_id=no-such"):
        for kind in ("transaction", "batch"):
            r = post_bundle(community, kind, [delete(f"Observation?{criteria}")])
            assert r.status_code == 200, r.text
            answers[criteria, kind] = r.json()["entry"]
    for kind in ("transaction", "batch"):
        assert answers["_id=carol-glu-0", kind] == answers["_id=alice-psy", kind] == \
            answers["_id=no-such", kind] == [{"response": {"status": "204 No Content"}}]
    assert stored(community, "Observation", "carol-glu-0") is not None
    assert stored(community, "Observation", "alice-psy") is not None


def test_one_resource_is_changed_once_by_a_transaction(community: Community) -> None:
    """R4: identities resolved by conditional entries must not overlap."""
    rid = seed(community)
    r = post_bundle(community, "transaction", [
        delete(f"Observation?identifier={SYSTEM}|alice-pulse"),
        put(f"Observation?identifier={SYSTEM}|alice-pulse", reading("alice", "alice-pulse"))])
    assert r.status_code == 422
    assert stored(community, "Observation", rid) is not None


# -- batch ----------------------------------------------------------------------------

def test_in_a_batch_each_conditional_entry_stands_alone(community: Community) -> None:
    rid = seed(community)
    before = rows(community)
    r = post_bundle(community, "batch", [
        put("Observation?patient=alice&code=15074-8", reading("alice", "alice-many")),
        put(f"Observation?identifier={SYSTEM}|alice-pulse",
            reading("alice", "alice-pulse", 90)),
        delete("Observation?_id=carol-glu-0"),
        put(f"Observation?identifier={SYSTEM}|alice-new", reading("alice", "alice-new"))])
    assert r.status_code == 200, r.text
    many, one, hidden, created = r.json()["entry"]
    assert many["response"]["status"] == "412"
    assert many["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert many["response"]["outcome"]["issue"][0]["code"] == "multiple-matches"
    assert one["response"]["status"] == "200 OK"
    assert hidden["response"]["status"] == "204 No Content"
    assert created["response"]["status"] == "201 Created"
    body = stored(community, "Observation", rid)
    assert body is not None and body["valueQuantity"]["value"] == 90
    assert rows(community) == before + 2  # the update's version and the creation
    assert stored(community, "Observation", "carol-glu-0") is not None


def test_a_conditional_entry_of_another_clinic_matches_only_its_own_residents(
        community: Community) -> None:
    """Clinic B sees Bob only: Alice's reading is no match for it, so its update cannot
    reach her record (it creates in Bob's), and its delete deletes nothing of hers."""
    rid = seed(community)
    before = stored(community, "Observation", rid)
    r = post_bundle(community, "batch", [
        put(f"Observation?identifier={SYSTEM}|alice-pulse", reading("bob", "alice-pulse")),
        delete(f"Observation?identifier={SYSTEM}|alice-pulse")], client="clinic-b")
    assert r.status_code == 200, r.text
    update, gone = r.json()["entry"]
    assert update["response"]["status"] == "201 Created"
    assert created_id(update) != rid
    # Clinic B's own new reading is the one its delete matched.
    assert gone["response"]["status"] == "204 No Content"
    assert stored(community, "Observation", rid) == before


# -- the trail ------------------------------------------------------------------------

def test_conditional_entries_are_recorded_with_the_transaction(community: Community) -> None:
    seed(community)
    h = headers(community)
    ledger = community.services.ledger

    def send(entries: list[dict[str, Any]]) -> Any:
        return community.http.post("/fhir", headers=h, json={
            "resourceType": "Bundle", "type": "transaction", "entry": entries})

    before = ledger.size()
    r = send([put(f"Observation?identifier={SYSTEM}|alice-pulse",
                  reading("alice", "alice-pulse")),
              delete("Observation?_id=no-such")])
    assert r.status_code == 200, r.text
    assert ledger.size() == before + 1
    entry = ledger.read(before + 1)
    assert entry is not None and entry["action"] == "transaction"
    assert entry["outcome"] == "success" and "alice" in entry["residents"]
    assert entry["details"]["conditional"] == {"0": "matched", "1": "no match"}
    r = send([put("Observation?patient=alice", reading("alice", "x"))])
    assert r.status_code == 412
    assert ledger.size() == before + 2
    refused = ledger.read(before + 2)
    assert refused is not None and refused["outcome"] == "refused"
