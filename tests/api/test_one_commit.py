"""A write and its audit entry commit in one database transaction, or neither does.

The failure is made where it would happen: the database refuses the ledger's insert (a
trigger, as a full disk or a broken ledger table would), after the resources were written
in the same transaction. Every kind of write answers 503 and leaves nothing in the database:
no version, no index row (data keys are not there at all: a new resident's may stay in the
key store as an orphan, which opens nothing). With the ledger back, the same write succeeds
and its entry names the version it wrote.
"""

import sqlite3
from typing import Any

import orjson
import pytest

from consent.model import build_consent
from tests.community import Community, observation

CRUDS = "system/*.cruds"
BROKEN = ("CREATE TRIGGER ledger_down BEFORE INSERT ON audit_entry "
          "BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END")


def db(community: Community) -> sqlite3.Connection:
    return sqlite3.connect(community.services.settings.data_dir / "exchange.db")


def counts(community: Community) -> dict[str, int]:
    with db(community) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("resource", "term_index", "date_index", "reference_index",
                              "audit_entry")}


def reading(pid: str, value: float = 72) -> dict[str, Any]:
    obs = observation("x", pid, "8867-4", "2025-01-01T08:00:00+08:00", value, "/min")
    del obs["id"]
    return obs


def new_patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": "赵", "given": ["淑芬"]}],
            "gender": "female", "birthDate": "1944-02-02"}


def transaction(n: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": reading("alice", 60 + i), "request": {"method": "POST",
                                                            "url": "Observation"}}
        for i in range(n)]}


def writes(community: Community) -> list[tuple[str, str, str, Any, dict[str, str]]]:
    """(name, method, path, body, extra headers) of one write of each kind."""
    changed = {**observation("alice-glu-0", "alice", "15074-8", "2022-03-01T09:00:00+08:00",
                             9.9)}
    consent = {**build_consent("alice", "Organization/clinic-b", ["TREAT"],
                               when=community.clock.now())}
    return [
        ("create", "POST", "/fhir/Observation", reading("alice"), {}),
        ("create of a new resident", "POST", "/fhir/Patient", new_patient(), {}),
        ("conditional create", "POST", "/fhir/Observation", reading("alice"),
         {"If-None-Exist": "identifier=urn:example|nothing-matches"}),
        ("update", "PUT", "/fhir/Observation/alice-glu-0", changed, {}),
        ("patch", "PATCH", "/fhir/Observation/alice-glu-0",
         [{"op": "replace", "path": "/status", "value": "amended"}],
         {"Content-Type": "application/json-patch+json"}),
        ("delete", "DELETE", "/fhir/Observation/alice-glu-1", None, {}),
        ("consent", "POST", "/fhir/Consent", consent, community.resident_headers("alice")),
        ("transaction of 25", "POST", "/fhir", transaction(25), {}),
        ("batch", "POST", "/fhir", {**transaction(3), "type": "batch"}, {}),
    ]


def send(community: Community, method: str, path: str, body: Any,
         headers: dict[str, str]) -> Any:
    if body is None:
        return community.http.request(method, path, headers=headers)
    if "Content-Type" in headers:
        return community.http.request(method, path, content=orjson.dumps(body),
                                      headers=headers)
    return community.http.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("kind", range(9), ids=lambda i: f"write-{i}")
def test_a_write_whose_entry_fails_stores_nothing(community: Community, kind: int) -> None:
    name, method, path, body, extra = writes(community)[kind]
    headers = community.headers("clinic-a", scope=CRUDS)  # the token's entry first
    before = counts(community)
    with db(community) as conn:
        conn.execute(BROKEN)
    try:
        r = send(community, method, path, body, {**headers, **extra})
    finally:
        with db(community) as conn:
            conn.execute("DROP TRIGGER ledger_down")
    assert r.status_code == 503, (name, r.status_code, r.text)
    assert r.json()["resourceType"] == "OperationOutcome"
    assert counts(community) == before, name
    # The record is as it was: the update, patch and delete changed nothing.
    current = community.http.get("/fhir/Observation/alice-glu-0", headers=headers).json()
    assert current["meta"]["versionId"] == "1" and current["status"] == "final"
    assert community.http.get("/fhir/Observation/alice-glu-1",
                              headers=headers).status_code == 200
    # With the ledger back, the same write is stored, and its entry names its versions.
    r = send(community, method, path, body, {**headers, **extra})
    assert r.status_code in (200, 201, 204), (name, r.text)
    entries = list(community.services.ledger.entries())
    written = [v for e in entries if e["request_id"] == entries[-1]["request_id"]
               for v in e.get("written", [])]
    with db(community) as conn:
        newest = {f"{t}/{i}/_history/{v}" for t, i, v in conn.execute(
            "SELECT resource_type, resource_id, version_id FROM resource "
            "WHERE last_updated = (SELECT max(last_updated) FROM resource)")}
    assert written and set(written) <= newest, name


def test_each_entry_names_only_its_residents_versions(community: Community) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": reading("alice"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Organization", "name": "Canteen"},
         "request": {"method": "POST", "url": "Organization"}}]}
    # A directory type is written under a scope that names it.
    r = community.http.post("/fhir", json=bundle, headers=community.headers(
        "clinic-a", scope=f"{CRUDS} system/Organization.c"))
    assert r.status_code == 200, r.text
    entries = list(community.services.ledger.entries())
    mine = [e for e in entries if e["request_id"] == entries[-1]["request_id"]]
    by_resident = {tuple(e["residents"]): e.get("written") for e in mine}
    assert [v.split("/")[0] for v in by_resident[("alice",)]] == ["Observation"]
    assert [v.split("/")[0] for v in by_resident[()]] == ["Organization"]


def test_a_transaction_reads_what_it_wrote(community: Community) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": reading("alice", 199), "request": {"method": "POST",
                                                         "url": "Observation"}},
        {"request": {"method": "GET", "url": "Observation?patient=alice&value-quantity=199"}}]}
    r = community.http.post("/fhir", json=bundle,
                            headers=community.headers("clinic-a", scope=CRUDS))
    assert r.status_code == 200, r.text
    found = r.json()["entry"][1]["resource"]
    assert found["total"] == 1


def test_a_revoked_consent_in_a_failed_write_is_not_believed(community: Community) -> None:
    """A consent written in a transaction that rolls back never reached the decision
    cache: after the failure, clinic B is still refused Alice's record."""
    consent = build_consent("alice", "Organization/clinic-b", ["TREAT"],
                            when=community.clock.now())
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": consent, "request": {"method": "POST", "url": "Consent"}},
        {"request": {"method": "GET", "url": "Consent?patient=alice"}}]}
    headers = community.headers("clinic-a", scope=CRUDS)
    b = community.headers("clinic-b")
    with db(community) as conn:
        conn.execute(BROKEN)
    try:
        r = community.http.post("/fhir", json=bundle, headers=headers)
    finally:
        with db(community) as conn:
            conn.execute("DROP TRIGGER ledger_down")
    assert r.status_code == 503
    assert community.http.get("/fhir/Patient/alice", headers=b).status_code == 404
