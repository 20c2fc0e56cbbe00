"""A write is a disclosure too: a caller who cannot read a resource cannot change it,
delete it or learn that it exists, through any write interaction; and a version filed
under another resident is decided on that resident."""

from typing import Any

import orjson
import pytest

from exchange.store.repository import Write
from tests.community import Community, observation

# (resource, why clinic-a cannot read it)
HIDDEN = [("Observation/alice-psy", "withheld label"),
          ("Observation/bob-glu-0", "another resident"),
          ("Claim/alice-claim", "a type the purpose excludes")]
MISSING = "Observation/no-such-id"


def _attempts(community: Community, ref: str) -> dict[str, tuple[int, Any]]:
    """Each write interaction on ``ref`` by clinic-a: status and OperationOutcome code."""
    h = community.headers("clinic-a", scope="system/*.cruds")
    rtype, rid = ref.split("/")
    body = observation(rid, "alice", "8867-4", "2025-01-01", 72, "/min")
    body["resourceType"] = rtype if rtype == "Observation" else "Observation"
    answers: dict[str, tuple[int, Any]] = {}

    def note(name: str, status: int, payload: Any) -> None:
        code = None
        if isinstance(payload, dict):
            issues = payload.get("issue") or [{}]
            code = (issues[0].get("details") or {}).get("coding", [{}])[0].get("code")
        answers[name] = (status, code)

    if rtype == "Observation":
        r = community.http.put(f"/fhir/{ref}", json=body, headers=h)
        note("update", r.status_code, r.json())
    r = community.http.delete(f"/fhir/{ref}", headers=h)
    note("delete", r.status_code, r.json() if r.content else None)
    for kind in ("transaction", "batch"):
        entry = {"request": {"method": "DELETE", "url": ref}}
        r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": kind,
                                               "entry": [entry]}, headers=h)
        payload = r.json()
        if kind == "batch":
            inner = payload["entry"][0]["response"]
            note(kind, int(inner["status"]), inner.get("outcome"))
        else:
            note(kind, r.status_code, payload)
    return answers


@pytest.mark.parametrize(("ref", "why"), HIDDEN, ids=[w for _, w in HIDDEN])
def test_a_hidden_resource_cannot_be_written_and_answers_like_a_missing_one(
        community: Community, ref: str, why: str) -> None:
    h = community.headers("clinic-a")
    assert community.http.get(f"/fhir/{ref}", headers=h).status_code == 404, why
    before = community.services.repository.read(*ref.split("/"))
    assert before is not None
    hidden = _attempts(community, ref)
    missing = _attempts(community, MISSING if ref.startswith("Observation") else
                        "Claim/no-such-id")
    assert hidden == missing, why
    assert all(status == 404 for status, _ in hidden.values()), hidden
    after = community.services.repository.read(*ref.split("/"))
    assert after is not None and not after.deleted
    assert (after.version_id, after.body) == (before.version_id, before.body), why
    history = community.http.get(f"/fhir/{ref.split('/')[0]}/_history", headers=h).text
    assert ref.split("/")[1] not in history


def test_the_owner_of_a_readable_resource_still_writes_it(community: Community) -> None:
    h = community.headers("clinic-a", scope="system/*.cruds")
    body = observation("alice-glu-0", "alice", "15074-8", "2022-03-01", 5.5)
    assert community.http.put("/fhir/Observation/alice-glu-0", json=body,
                              headers=h).status_code == 200
    assert community.http.delete("/fhir/Observation/alice-glu-0",
                                 headers=h).status_code == 204


def test_a_version_filed_under_another_resident_is_not_disclosed(
        community: Community) -> None:
    """clinic-b moves an Observation from carol (who consented to nobody) to bob; clinic-b
    may read bob now, but carol's version 1 stays hidden, as does its history entry."""
    repo = community.services.repository
    moved = orjson.loads(repo.read("Observation", "carol-glu-0").body)  # type: ignore[union-attr]
    moved["subject"] = {"reference": "Patient/bob"}
    repo.apply([Write("update", "Observation", "carol-glu-0", moved)])
    h = community.headers("clinic-b")
    assert community.http.get("/fhir/Observation/carol-glu-0", headers=h).status_code == 200
    old = community.http.get("/fhir/Observation/carol-glu-0/_history/1", headers=h)
    missing = community.http.get("/fhir/Observation/carol-glu-0/_history/9", headers=h)
    assert old.status_code == missing.status_code == 404
    assert "Patient/carol" not in old.text
    history = community.http.get("/fhir/Observation/carol-glu-0/_history", headers=h).json()
    assert [e["response"]["etag"] for e in history["entry"]] == ['W/"2"']
    assert "Patient/carol" not in orjson.dumps(history).decode()
