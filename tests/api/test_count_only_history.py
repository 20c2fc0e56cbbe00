"""Count-only searches and scopes (#15, point 9), over HTTP.

A count that names a resident is a fact about them: it is in their access history like a
read. And re-identification, like every other rule, opens nothing the caller's token was
not scoped for.
"""

from typing import Any

import pytest

from tests.community import RESIDENT_ID, Community

NAMING_ALICE = [
    ("Observation?patient=alice&_summary=count", "Observation"),
    ("Observation?subject=Patient/alice&code=15074-8&_summary=count", "Observation"),
    ("Observation?patient=alice&_count=0", "Observation"),
    ("Patient/alice/Observation?_summary=count", "Observation"),
    (f"Observation?patient.identifier={RESIDENT_ID}|330106194203081228&_summary=count",
     "Observation"),
    ("Patient?_id=alice&_summary=count", "Patient"),
]


def history(community: Community, pid: str) -> list[dict[str, Any]]:
    r = community.http.get("/resident/access-history",
                           headers=community.resident_headers(pid))
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def counted(community: Community, headers: dict[str, str], query: str) -> int:
    r = community.http.get(f"/fhir/{query}", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "entry" not in body  # a count, and nothing else
    return int(body["total"])


@pytest.mark.parametrize(("query", "rtype"), NAMING_ALICE)
def test_a_count_naming_a_resident_is_in_their_access_history(
        community: Community, query: str, rtype: str) -> None:
    before = community.services.ledger.size()
    assert counted(community, community.headers("clinic-a"), query) > 0
    (item,) = [i for i in history(community, "alice") if i["seq"] > before]
    assert item["organization"] == "Organization/clinic-a" and item["what"] == rtype
    assert item["purpose"] == "TREAT" and item["outcome"] == "success"
    assert not [i for i in history(community, "bob") if i["seq"] > before]
    _, page = community.services.ledger.query(resident="alice", limit=500)
    (entry,) = [e for seq, e in page if seq > before and e["action"] == "search"]
    assert entry["residents"] == ["alice"] and entry["what"]["type"] == rtype


def test_a_count_that_finds_nothing_is_theirs_too(community: Community) -> None:
    """Clinic B has no consent of Alice's: its count of her readings is 0, and she sees
    that it asked."""
    before = community.services.ledger.size()
    assert counted(community, community.headers("clinic-b"),
                   "Observation?patient=alice&_summary=count") == 0
    (item,) = [i for i in history(community, "alice") if i["seq"] > before]
    assert item["organization"] == "Organization/clinic-b" and item["what"] == "Observation"


def test_a_count_naming_no_one_is_in_no_ones_history(community: Community) -> None:
    before = community.services.ledger.size()
    assert counted(community, community.headers("clinic-a"),
                   "Observation?code=15074-8&_summary=count") == 3
    for pid in ("alice", "bob", "carol"):
        assert not [i for i in history(community, pid) if i["seq"] > before]


def test_a_count_naming_someone_who_does_not_exist_names_no_one(community: Community) -> None:
    clinic = community.headers("clinic-a")
    before = community.services.ledger.size()
    assert counted(community, clinic, "Observation?patient=nobody&_summary=count") == 0
    entry = list(community.services.ledger.entries())[-1]
    assert entry["residents"] == [] and community.services.ledger.size() == before + 1


def test_reidentification_needs_a_token_scoped_for_it(small_k_community: Community) -> None:
    community = small_k_community
    r = community.http.post("/fhir/Consent", headers=community.resident_headers("carol"),
                            json=_hub_consent("carol"))
    assert r.status_code == 201, r.text
    hub = community.headers("hub", "CAREMGT")
    (entry,) = [e for e in community.http.get("/fhir/Patient", headers=hub).json()["entry"]
                if e["search"]["mode"] == "match"]
    ask = {"organization": "Organization/hub", "purpose": "CAREMGT",
           "token": entry["resource"]["identifier"][0]["value"]}

    trail_only = community.headers("office", "HCOMPL", "system/AuditEvent.rs")
    refused = community.http.post("/compliance/reidentify", json=ask, headers=trail_only)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    assert "system/Patient.r" in refused.json()["issue"][0]["diagnostics"]
    last = list(community.services.ledger.entries())[-1]
    assert last["action"] == "reidentify" and last["outcome"] == "denied"
    assert last["residents"] == []  # refused before any token was opened
    assert "scope_missing" in last["decisions"][0]["reasons"]

    scoped = community.headers("office", "HCOMPL", "system/AuditEvent.rs system/Patient.r")
    r = community.http.post("/compliance/reidentify", json=ask, headers=scoped)
    assert r.status_code == 200, r.text
    assert r.json()["resident"] == "carol"


def _hub_consent(pid: str) -> dict[str, Any]:
    from consent.model import build_consent

    return build_consent(pid, "Organization/hub", ["CAREMGT"],
                         classes=["Patient", "Observation", "Condition"])
