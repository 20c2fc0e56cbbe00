"""Strict input (#14, point 5, in part): a Bundle with two entries of one fullUrl or a
urn:uuid that names no entry, a malformed If-Match, a search posted as JSON, a body over the
limit and a control character are refused with a clear OperationOutcome that echoes
nothing, and nothing of them is stored."""

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.community import Community

FHIR = "application/fhir+json"


def _obs(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/alice"}, "valueQuantity": {"value": 71},
            **extra}


def _headers(community: Community) -> dict[str, str]:
    return {**community.headers("clinic-a", "TREAT", "system/*.cruds"), "Content-Type": FHIR}


def _count(community: Community) -> int:
    r = community.http.get("/fhir/Observation?subject=Patient/alice&_summary=count",
                           headers=community.headers("clinic-a"))
    return int(r.json()["total"])


def _issue(r: Any) -> dict[str, Any]:
    assert r.json()["resourceType"] == "OperationOutcome"
    return dict(r.json()["issue"][0])


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_two_entries_of_one_full_url_refuse_the_bundle(community: Community,
                                                       kind: str) -> None:
    before = _count(community)
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entry = {"fullUrl": full_url, "resource": _obs(),
             "request": {"method": "POST", "url": "Observation"}}
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": kind,
                                           "entry": [entry, entry]},
                            headers=_headers(community))
    assert r.status_code == 400, r.text
    assert _issue(r)["code"] == "invariant"
    assert _issue(r)["expression"] == ["Bundle.entry[1].fullUrl"]
    assert _count(community) == before


def _post_member_and_group(community: Community, full_url: str, member: str) -> Any:
    """A transaction of an Observation at ``full_url`` and one whose member is ``member``."""
    entries = [{"fullUrl": full_url, "resource": _obs(),
                "request": {"method": "POST", "url": "Observation"}},
               {"resource": _obs(hasMember=[{"reference": member}]),
                "request": {"method": "POST", "url": "Observation"}}]
    return community.http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}, headers=_headers(community))


def test_a_urn_uuid_that_names_no_entry_refuses_the_transaction(community: Community) -> None:
    before = _count(community)
    dangling = f"urn:uuid:{uuid.uuid4()}"
    r = _post_member_and_group(community, f"urn:uuid:{uuid.uuid4()}", dangling)
    assert r.status_code == 400, r.text
    assert _issue(r)["expression"] == ["Bundle.entry[1].resource"]
    assert dangling not in r.text
    assert _count(community) == before


def test_a_urn_uuid_that_names_an_entry_is_resolved(community: Community) -> None:
    member = f"urn:uuid:{uuid.uuid4()}"
    r = _post_member_and_group(community, member, member)
    assert r.status_code == 200, r.text


def test_if_match_malformed_stale_or_any(community: Community) -> None:
    h = _headers(community)
    created = community.http.post("/fhir/Observation", json=_obs(), headers=h).json()
    rid = created["id"]
    url = f"/fhir/Observation/{rid}"
    body = {**_obs(valueQuantity={"value": 72}), "id": rid}
    for malformed in ("garbage", 'W/"one"', '"1", "2"'):
        r = community.http.put(url, json=body, headers={**h, "If-Match": malformed})
        assert r.status_code == 400, (malformed, r.text)
        assert malformed not in r.json()["issue"][0]["diagnostics"]
    stale = community.http.put(url, json=body, headers={**h, "If-Match": 'W/"9"'})
    assert stale.status_code == 412
    current = community.http.put(url, json=body, headers={**h, "If-Match": 'W/"1"'})
    assert current.status_code == 200, current.text
    anything = community.http.put(url, json={**body, "valueQuantity": {"value": 73}},
                                  headers={**h, "If-Match": "*"})
    assert anything.status_code == 200, anything.text
    read = community.http.get(url, headers=community.headers("clinic-a")).json()
    assert read["meta"]["versionId"] == "3" and read["valueQuantity"]["value"] == 73


def test_a_search_posted_as_json_is_415_and_as_a_form_is_answered(
        community: Community) -> None:
    h = community.headers("clinic-a")
    r = community.http.post("/fhir/Observation/_search", json={"subject": "Patient/alice"},
                            headers=h)
    assert r.status_code == 415, r.text
    assert _issue(r)["code"] == "not-supported"
    form = community.http.post("/fhir/Observation/_search",
                               data={"subject": "Patient/alice"}, headers=h)
    assert form.status_code == 200
    assert form.json()["total"] == _count(community)


def test_a_body_over_the_limit_is_413_declared_or_chunked(tmp_path: Any) -> None:
    from tests.community import build_community

    community = build_community(tmp_path, max_body_bytes=64 * 1024)
    before = _count(community)
    big = _obs(note=[{"text": "x" * (100 * 1024)}])
    h = _headers(community)
    declared = community.http.post("/fhir/Observation", json=big, headers=h)
    assert declared.status_code == 413, declared.text
    assert _issue(declared)["code"] == "too-long"
    assert "xxxx" not in declared.text
    body = orjson.dumps(big)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start:start + 8192]

    chunked = community.http.post("/fhir/Observation", content=chunks(), headers=h)
    assert chunked.status_code == 413, chunked.text
    in_a_bundle = community.http.post("/fhir", json={
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{"resource": big, "request": {"method": "POST", "url": "Observation"}}]},
        headers=h)
    assert in_a_bundle.status_code == 413
    assert _count(community) == before
    small = community.http.post("/fhir/Observation", json=_obs(), headers=h)
    assert small.status_code == 201
    community.services.engine.dispose()


@pytest.mark.parametrize("char", ["\u0000", "\u001b", "\u0008", "\u007f"])
def test_a_control_character_is_400_naming_the_element(community: Community,
                                                       char: str) -> None:
    before = _count(community)
    r = community.http.post("/fhir/Observation",
                            json=_obs(note=[{"text": f"call back{char}later"}]),
                            headers=_headers(community))
    assert r.status_code == 400, r.text
    assert _issue(r)["code"] == "value"
    assert _issue(r)["expression"] == ["Observation.note[0].text"]
    assert "call back" not in r.text
    assert _count(community) == before


def test_tabs_and_line_breaks_are_text(community: Community) -> None:
    r = community.http.post("/fhir/Observation",
                            json=_obs(note=[{"text": "line one\r\n\tline two"}]),
                            headers=_headers(community))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("depth", [100, 300])
def test_deep_nesting_is_400_not_a_traceback(community: Community, depth: int) -> None:
    """Found by an attacker: 300 levels of extensions were a RecursionError and a 500."""
    inner = '{"url":"http://example.org/x","valueString":"z"}'
    for _ in range(depth):
        inner = '{"url":"http://example.org/x","extension":[' + inner + ']}'
    body = orjson.dumps(_obs())[:-1] + b',"extension":[' + inner.encode() + b"]}"
    r = community.http.post("/fhir/Observation", content=body, headers=_headers(community))
    assert r.status_code == 400, r.text[:300]
    assert "nested deeper" in _issue(r)["diagnostics"]


def test_a_record_nested_as_deep_as_real_ones_is_kept(community: Community) -> None:
    inner = '{"url":"http://example.org/x","valueString":"z"}'
    for _ in range(12):
        inner = '{"url":"http://example.org/x","extension":[' + inner + ']}'
    body = orjson.dumps(_obs())[:-1] + b',"extension":[' + inner.encode() + b"]}"
    r = community.http.post("/fhir/Observation", content=body, headers=_headers(community))
    assert r.status_code == 201, r.text[:300]
