"""No existence oracle: for every way of asking about one id, a resource the caller may
not see answers exactly as an id that does not exist (status, body, headers and time)."""

import time
from pathlib import Path

import orjson
import pytest

from exchange.store.repository import Write
from tests.community import Community, build_community

# (hidden path, missing path): a withheld label, another resident, an excluded type,
# a resident who consented to nobody.
PAIRS = [
    ("/fhir/Observation/alice-psy", "/fhir/Observation/no-such"),
    ("/fhir/Observation/alice-psy/_history", "/fhir/Observation/no-such/_history"),
    ("/fhir/Observation/alice-psy/_history/1", "/fhir/Observation/no-such/_history/1"),
    ("/fhir/Observation/bob-glu-0", "/fhir/Observation/no-such"),
    ("/fhir/Observation/bob-glu-0/_history", "/fhir/Observation/no-such/_history"),
    ("/fhir/Claim/alice-claim", "/fhir/Claim/no-such"),
    ("/fhir/Claim/alice-claim/_history", "/fhir/Claim/no-such/_history"),
    ("/fhir/Patient/carol", "/fhir/Patient/no-such"),
    ("/fhir/Patient/carol/$everything", "/fhir/Patient/no-such/$everything"),
    ("/fhir/Patient/carol/_history", "/fhir/Patient/no-such/_history"),
    ("/fhir/Consent/bob-treat-b/$receipt", "/fhir/Consent/no-such/$receipt"),
]


@pytest.mark.parametrize(("hidden", "missing"), PAIRS, ids=[h for h, _ in PAIRS])
def test_hidden_answers_exactly_like_missing(community: Community, hidden: str,
                                             missing: str) -> None:
    h = {**community.headers("clinic-a"), "X-Request-ID": "same-request"}
    a, b = community.http.get(hidden, headers=h), community.http.get(missing, headers=h)
    assert a.status_code == b.status_code == 404
    assert a.content == b.content
    assert dict(a.headers) == dict(b.headers)


def test_type_history_names_no_deleted_resource_the_caller_could_not_see(
        community: Community) -> None:
    community.services.repository.apply([Write("delete", "Observation", "alice-psy"),
                                         Write("delete", "Observation", "alice-glu-1")])
    history = community.http.get("/fhir/Observation/_history?_count=500",
                                 headers=community.headers("clinic-a")).json()
    urls = [e["request"]["url"] for e in history["entry"]]
    assert "Observation/alice-glu-1" in urls  # a deletion of what it could see
    assert not any("alice-psy" in u for u in urls)
    assert not any("bob" in u or "carol" in u for u in urls)


def test_hidden_and_missing_take_the_same_time(tmp_path: Path) -> None:
    """A "not found" leaves no sooner than the floor after the road began, hidden or
    missing; an answer with data is not held back. (The medians' difference, measured
    over HTTP, is in ``make bench``: hidden-missing.)"""
    floor = 0.1
    community = build_community(tmp_path, not_found_floor_seconds=floor)
    h = community.headers("clinic-a")
    for hidden, missing in PAIRS[:4]:
        for path in (hidden, missing):
            started = time.perf_counter()
            assert community.http.get(path, headers=h).status_code == 404
            assert time.perf_counter() - started >= floor, path
    started = time.perf_counter()
    assert community.http.get("/fhir/Observation/alice-glu-0", headers=h).status_code == 200
    assert time.perf_counter() - started < floor


@pytest.mark.parametrize("change", ["moved to another resident", "labelled since"])
def test_no_version_of_a_record_hidden_now_is_shown(community: Community, change: str) -> None:
    """A record the caller could see once and may not see now (moved to a resident who did
    not consent to it, or labelled sensitive since) is missing in every view: its old
    versions would prove it exists."""
    repo = community.services.repository
    row = repo.read("Observation", "alice-glu-2")
    assert row is not None
    body = orjson.loads(row.body)
    if change == "moved to another resident":
        body["subject"] = {"reference": "Patient/bob"}
    else:
        body["meta"] = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                                "v3-ActCode", "code": "PSY"}]}
    repo.apply([Write("update", "Observation", "alice-glu-2", body)])
    h = {**community.headers("clinic-a"), "X-Request-ID": "same-request"}
    for path in ("", "/_history", "/_history/1", "/_history/2"):
        hidden = community.http.get(f"/fhir/Observation/alice-glu-2{path}", headers=h)
        missing = community.http.get(f"/fhir/Observation/no-such{path}", headers=h)
        assert hidden.status_code == missing.status_code == 404, path
        assert hidden.content == missing.content
    history = community.http.get("/fhir/Observation/_history?_count=500", headers=h).json()
    assert not any("alice-glu-2" in e["fullUrl"] for e in history["entry"])
    assert any("alice-glu-1" in e["fullUrl"] for e in history["entry"])


def test_a_pseudonymized_recipient_cannot_ask_by_real_id(small_k_community: Community) -> None:
    """Found by an attacker: the hub read records by their real ids and got them back
    pseudonymized, linking a real id to its pseudonym (and telling by 200 or 404 whether
    the resident consented). It knows residents by pseudonym only."""
    from consent.model import build_consent

    community = small_k_community
    r = community.http.post("/fhir/Consent", json=build_consent(
        "bob", "Organization/lab", ["HRESCH"]), headers=community.resident_headers("bob"))
    assert r.status_code == 201
    hub = {**community.headers("lab", "HRESCH"), "X-Request-ID": "same-request"}
    found = community.http.get("/fhir/Observation", headers=hub).json()
    assert found["total"] >= 1  # it does receive bob's readings, under pseudonyms
    for real, missing in (("/fhir/Observation/bob-glu-0", "/fhir/Observation/no-such"),
                          ("/fhir/Observation/bob-glu-0/_history",
                           "/fhir/Observation/no-such/_history"),
                          ("/fhir/Observation/bob-glu-0/_history/1",
                           "/fhir/Observation/no-such/_history/1"),
                          ("/fhir/Patient/bob/$everything", "/fhir/Patient/no-such/$everything")):
        a, b = community.http.get(real, headers=hub), community.http.get(missing, headers=hub)
        assert a.status_code == b.status_code == 404, real
        assert a.content == b.content
