"""Data classes narrower than a type: consents that open or deny categories of
Observation, across the HTTP API, for reads, searches (totals and pages) and includes."""

from typing import Any

from consent.model import build_consent
from tests.community import Community, observation
from tests.consent.test_model import grant

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITALS = (CATEGORY, "vital-signs")
LABS = (CATEGORY, "laboratory")


def lab(oid: str, pid: str) -> dict[str, Any]:
    obs = observation(oid, pid, "2345-7", "2024-06-01", 6.1)
    obs["category"] = [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}]
    return obs


def add_labs(community: Community, pid: str, n: int = 2) -> list[str]:
    h = community.headers("clinic-a", scope="system/*.cruds")
    ids = []
    for i in range(n):
        r = community.http.post("/fhir/Observation", json=lab(f"lab-{i}", pid), headers=h)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def observation_ids(community: Community, client: str, query: str = "") -> tuple[int, set[str]]:
    r = community.http.get(f"/fhir/Observation?patient=alice{query}",
                           headers=community.headers(client))
    assert r.status_code == 200, r.text
    body = r.json()
    return body["total"], {e["resource"]["id"] for e in body.get("entry", [])}


def test_a_category_permit_opens_that_category_only(community: Community) -> None:
    labs = add_labs(community, "alice")
    grant(community, "alice", build_consent("alice", "Organization/clinic-b", ["TREAT"],
                                            categories=[VITALS]))
    total, ids = observation_ids(community, "clinic-b")
    assert ids and not ids & set(labs)
    assert total == len(ids)
    assert all(i.startswith("alice-glu") for i in ids)
    assert community.http.get(f"/fhir/Observation/{labs[0]}",
                              headers=community.headers("clinic-b")).status_code == 404
    # Only Observation was named: the rest of the record stays closed.
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.headers("clinic-b")).status_code == 404
    # The clinic with a whole permit still sees both categories.
    _, everything = observation_ids(community, "clinic-a")
    assert set(labs) <= everything and ids <= everything


def test_a_nested_category_deny_keeps_that_category_out_of_counts_and_pages(
        community: Community) -> None:
    labs = add_labs(community, "alice", 3)
    grant(community, "alice", build_consent("alice", "Organization/clinic-b", ["TREAT"],
                                            except_categories=[LABS]))
    total, ids = observation_ids(community, "clinic-b")
    assert not ids & set(labs) and total == len(ids)
    seen: set[str] = set()
    for page in range(total):
        page_total, page_ids = observation_ids(community, "clinic-b",
                                               f"&_count=1&_offset={page}")
        assert page_total == total and len(page_ids) == 1
        seen |= page_ids
    assert seen == ids
    assert community.http.get("/fhir/Patient/alice",
                              headers=community.headers("clinic-b")).status_code == 200
    assert community.http.get(f"/fhir/Observation/{labs[1]}",
                              headers=community.headers("clinic-b")).status_code == 404
    everything = community.http.get("/fhir/Patient/alice/$everything",
                                    headers=community.headers("clinic-b")).json()
    assert not {e["resource"]["id"] for e in everything["entry"]} & set(labs)


def test_a_category_opt_out_wins_over_a_whole_permit(community: Community) -> None:
    labs = add_labs(community, "alice")
    opt_out = build_consent("alice", None, [], provision_type="deny",
                            categories=[LABS])
    _, before = observation_ids(community, "clinic-a")
    assert set(labs) <= before
    grant(community, "alice", opt_out)
    total, after = observation_ids(community, "clinic-a")
    assert not after & set(labs) and total == len(after) == len(before) - len(labs)
