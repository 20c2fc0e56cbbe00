"""Strict input (#14, point 5): a Bundle with two entries of one fullUrl or a urn:uuid that
names no entry, a malformed If-Match, a search posted as JSON, a body over the limit, a
control character, a primitive of the wrong JSON type, a narrative outside R4's XHTML
rules and a reference to another server are refused with a clear OperationOutcome that
names the element and echoes nothing, and nothing of them is stored."""

import json
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


# -- primitives: R4's JSON types, not what the models would coerce ---------------------------

@pytest.mark.parametrize("extra, element, expected", [
    ({"valueBoolean": "true"}, "Observation.valueBoolean", "boolean"),
    ({"valueBoolean": 1}, "Observation.valueBoolean", "boolean"),
    ({"valueInteger": "5"}, "Observation.valueInteger", "integer"),
    ({"valueInteger": 5.0}, "Observation.valueInteger", "integer"),
    ({"valueInteger": 2 ** 70}, "Observation.valueInteger", "integer"),
    ({"valueInteger": 2 ** 31 + 12345}, "Observation.valueInteger", "integer"),
    ({"valueQuantity": {"value": "71"}}, "Observation.valueQuantity.value", "decimal"),
    ({"valueString": 71}, "Observation.valueString", "string"),
    ({"effectiveDateTime": 1700000000}, "Observation.effectiveDateTime", "dateTime"),
    ({"issued": ""}, "Observation.issued", "instant"),
    ({"status": None}, "Observation.status", "null"),
    ({"extension": [{"url": "http://example.org/x", "valueBoolean": "false"}]},
     "Observation.extension[0].valueBoolean", "boolean"),
    ({"component": [{"code": {"text": "x"}, "valueInteger": True}]},
     "Observation.component[0].valueInteger", "integer"),
    ({"contained": [{"resourceType": "Patient", "id": "p", "active": "true"}]},
     "Observation.contained[0].active", "boolean"),
    # The models parse a string as JSON where an object belongs: a Reference to Bob in
    # a string, and a crash (a 500) on "true" for a primitive's extension.
    ({"subject": '{"reference": "Patient/bob"}'}, "Observation.subject", "object"),
    ({"_status": "true"}, "Observation._status", "object"),
])
def test_a_primitive_of_the_wrong_json_type_is_422_naming_the_element(
        community: Community, extra: dict[str, Any], element: str, expected: str) -> None:
    before = _count(community)
    body = _obs(**extra)
    if "valueQuantity" not in extra and any(k.startswith("value") for k in extra):
        del body["valueQuantity"]  # one value[x]
    # The standard library's encoder, which writes 2**70 as the integer it is.
    r = community.http.post("/fhir/Observation", content=json.dumps(body).encode(),
                            headers=_headers(community))
    assert r.status_code == 422, r.text
    issue = _issue(r)
    assert issue["code"] == "invalid"
    assert issue["expression"] == [element]
    assert expected in issue["diagnostics"]
    for value in extra.values():
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value:
            assert json.dumps(value) not in issue["diagnostics"]
    assert _count(community) == before


def test_primitives_of_their_json_types_are_kept(community: Community) -> None:
    h = _headers(community)
    for extra in ({"valueInteger": -5}, {"valueBoolean": False},
                  {"valueQuantity": {"value": 71.25}},
                  {"component": [{"code": {"text": "x"}, "valueInteger": 2 ** 31 - 1}]}):
        body = _obs(**extra)
        if "valueQuantity" not in extra:
            body.pop("valueQuantity")
        r = community.http.post("/fhir/Observation", json=body, headers=h)
        assert r.status_code == 201, r.text
        got = community.http.get(f"/fhir/Observation/{r.json()['id']}",
                                 headers=community.headers("clinic-a")).json()
        for key, value in extra.items():
            assert got[key] == value and type(got[key]) is type(value)


def test_a_resident_update_with_a_string_boolean_changes_nothing(
        community: Community) -> None:
    h = _headers(community)
    url = "/fhir/Patient/alice"
    before = community.http.get(url, headers=community.headers("clinic-a")).json()
    body = {k: v for k, v in before.items() if k != "meta"}
    r = community.http.put(url, json={**body, "active": "true"}, headers=h)
    assert r.status_code == 422, r.text
    assert _issue(r)["expression"] == ["Patient.active"]
    after = community.http.get(url, headers=community.headers("clinic-a")).json()
    assert after["meta"]["versionId"] == before["meta"]["versionId"] and "active" not in after


def test_a_patch_and_a_bundle_entry_are_held_to_the_json_types(community: Community) -> None:
    h = _headers(community)
    patch = community.http.patch(
        "/fhir/Observation/alice-glu-0",
        json=[{"op": "replace", "path": "/valueQuantity/value", "value": "6.6"}],
        headers={**h, "Content-Type": "application/json-patch+json"})
    assert patch.status_code == 422, patch.text
    assert _issue(patch)["expression"] == ["Observation.valueQuantity.value"]
    read = community.http.get("/fhir/Observation/alice-glu-0",
                              headers=community.headers("clinic-a")).json()
    assert read["meta"]["versionId"] == "1" and read["valueQuantity"]["value"] == 5.4
    before = _count(community)
    entry = {"resource": _obs(valueQuantity={"value": 71, "comparator": 5}),
             "request": {"method": "POST", "url": "Observation"}}
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                           "entry": [{"resource": _obs(), "request": {
                                               "method": "POST", "url": "Observation"}},
                                               entry]}, headers=h)
    assert r.status_code == 422, r.text
    assert _issue(r)["expression"] == ["Bundle.entry[1].resource.valueQuantity.comparator"]
    assert "code" in _issue(r)["diagnostics"]
    assert _count(community) == before


# -- narratives: R4's XHTML rules (txt-1, txt-2) ------------------------------------------

XHTML = 'xmlns="http://www.w3.org/1999/xhtml"'


def _div(inner: str) -> str:
    return f"<div {XHTML}>{inner}</div>"


@pytest.mark.parametrize("div", [
    _div("<p>dose given</p><script>steal(document.cookie)</script>"),
    _div('<p onclick="steal()">dose given</p>'),
    _div('<a href="javascript:steal()">dose given</a>'),
    _div('<a href=" java&#x09;script:steal()">dose given</a>'),
    _div('<img src="data:text/html;base64,PHNjcmlwdD4=" alt="dose given"/>'),
    _div('<iframe src="http://evil.example/"></iframe><p>dose given</p>'),
    _div('<form action="http://evil.example/"><input name="pin"/></form>'),
    _div('<object data="x.swf"></object><embed src="x.swf"/><p>dose given</p>'),
    _div('<base href="http://evil.example/"/><link rel="stylesheet" href="x.css"/>'),
    _div('<meta http-equiv="refresh" content="0"/><style>p {}</style><p>dose given</p>'),
    _div('<p style="background: url(http://evil.example/track.png)">dose given</p>'),
    _div('<svg xmlns="http://www.w3.org/2000/svg"><script>steal()</script></svg>'),
    "<div><p>dose given</p></div>",  # not in the XHTML namespace
    f"<p {XHTML}>dose given</p>",  # not a div
    _div("  "),  # no content (txt-2)
    _div("<p>dose given</div>"),  # not well-formed
    _div("<p>dose&nbsp;given</p>"),  # an HTML entity XML does not define
    f'<!DOCTYPE div [<!ENTITY a "dose given">]><div {XHTML}>&a;</div>',
    "dose given",
])
def test_a_narrative_outside_r4s_xhtml_is_400_naming_the_element(
        community: Community, div: str) -> None:
    before = _count(community)
    r = community.http.post("/fhir/Observation",
                            json=_obs(text={"status": "generated", "div": div}),
                            headers=_headers(community))
    assert r.status_code == 400, r.text
    assert _issue(r)["code"] == "invariant"
    assert _issue(r)["expression"] == ["Observation.text.div"]
    assert "dose given" not in r.text and "evil.example" not in r.text
    assert _count(community) == before


def test_a_narrative_is_checked_wherever_it_sits(community: Community) -> None:
    h = _headers(community)
    bad = {"status": "generated", "div": _div("<script>steal()</script>")}
    contained = _obs(contained=[{"resourceType": "Specimen", "id": "s1", "text": bad}],
                     specimen={"reference": "#s1"})
    r = community.http.post("/fhir/Observation", json=contained, headers=h)
    assert r.status_code == 400, r.text
    assert _issue(r)["expression"] == ["Observation.contained[0].text.div"]
    for kind in ("transaction", "batch"):
        r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": _obs(text=bad), "request": {"method": "POST", "url": "Observation"}}]},
            headers=h)
        if kind == "transaction":
            assert r.status_code == 400, r.text
            assert _issue(r)["expression"] == ["Bundle.entry[0].resource.text.div"]
        else:
            outcome = r.json()["entry"][0]["response"]
            assert outcome["status"].startswith("400"), outcome
            assert outcome["outcome"]["issue"][0]["expression"] == \
                ["Bundle.entry[0].resource.text.div"]


def test_a_narrative_of_basic_formatting_is_kept(community: Community) -> None:
    div = _div('<h3>Pulse</h3><table class="grid"><tr><th>when</th><td style="color: red">'
               '71 <b>/min</b></td></tr></table><p><a href="https://loinc.org/8867-4">'
               'LOINC</a> <a href="#top">top</a> <img src="#img1" alt="chart"/></p>'
               '<ul><li><i>resting</i><br/>seated</li></ul>')
    r = community.http.post("/fhir/Observation",
                            json=_obs(text={"status": "generated", "div": div}),
                            headers=_headers(community))
    assert r.status_code == 201, r.text
    got = community.http.get(f"/fhir/Observation/{r.json()['id']}",
                             headers=community.headers("clinic-a")).json()
    assert got["text"]["div"] == div


# -- references: this exchange's records, or another server's -------------------------------

def test_a_reference_to_another_server_is_400_and_nothing_is_filed(
        community: Community) -> None:
    """Before, http://other.example/fhir/Patient/alice was filed under the local alice."""
    before = _count(community)
    h = _headers(community)
    foreign = "http://other.example/fhir/Patient/alice"
    r = community.http.post("/fhir/Observation",
                            json=_obs(subject={"reference": foreign}), headers=h)
    assert r.status_code == 400, r.text
    assert _issue(r)["code"] == "invariant"
    assert _issue(r)["expression"] == ["Observation.subject.reference"]
    assert "other.example" not in r.text
    performer = _obs(performer=[{"reference": "https://other.example/fhir/Practitioner/p1"}])
    r = community.http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                           "entry": [{"resource": performer, "request": {
                                               "method": "POST", "url": "Observation"}}]},
                            headers=h)
    assert r.status_code == 400, r.text
    assert _issue(r)["expression"] == ["Bundle.entry[0].resource.performer[0].reference"]
    assert _count(community) == before


def test_an_absolute_reference_to_this_exchange_is_read_as_the_local_one(
        community: Community) -> None:
    before = _count(community)
    own = f"{community.services.settings.fhir_base}/Patient/alice"
    r = community.http.post("/fhir/Observation", json=_obs(subject={"reference": own}),
                            headers=_headers(community))
    assert r.status_code == 201, r.text
    assert _count(community) == before + 1  # filed under alice, found by Patient/alice
    got = community.http.get(f"/fhir/Observation/{r.json()['id']}",
                             headers=community.headers("clinic-a")).json()
    assert got["subject"]["reference"] == own  # kept as sent


def test_a_search_by_another_servers_reference_is_400_and_by_our_own_finds_it(
        community: Community) -> None:
    """Before, ``subject=http://other.example/fhir/Patient/alice`` found the local alice's."""
    http, h = community.http, community.headers("clinic-a")
    foreign = http.get("/fhir/Observation",
                       params={"subject": "http://other.example/fhir/Patient/alice"},
                       headers=h)
    assert foreign.status_code == 400, foreign.text
    assert "another server" in _issue(foreign)["diagnostics"]
    assert "other.example" not in foreign.text
    own = f"{community.services.settings.fhir_base}/Patient/alice"
    local = http.get("/fhir/Observation", params={"subject": own}, headers=h)
    plain = http.get("/fhir/Observation", params={"subject": "Patient/alice"}, headers=h)
    assert local.status_code == plain.status_code == 200
    assert local.json()["total"] == plain.json()["total"] > 0


def test_an_alias_the_operator_names_is_this_exchange(tmp_path: Any) -> None:
    from tests.community import build_community

    community = build_community(tmp_path, server_aliases=["https://old-name.example/fhir/"])
    before = _count(community)
    h = _headers(community)
    r = community.http.post("/fhir/Observation", json=_obs(
        subject={"reference": "https://old-name.example/fhir/Patient/alice/_history/1"}),
        headers=h)
    assert r.status_code == 201, r.text
    assert _count(community) == before + 1
    elsewhere = community.http.post("/fhir/Observation", json=_obs(
        subject={"reference": "https://old-name.example/other/Patient/alice"}), headers=h)
    assert elsewhere.status_code == 400, elsewhere.text
    assert _count(community) == before + 1
    community.services.engine.dispose()


def test_the_aliases_setting_reads_a_comma_separated_list(monkeypatch: Any) -> None:
    from exchange.config import Settings

    monkeypatch.setenv("EXCHANGE_SERVER_ALIASES",
                       "https://old-name.example/fhir/, http://10.0.0.5:8080/fhir")
    assert Settings().server_aliases == ["https://old-name.example/fhir",
                                         "http://10.0.0.5:8080/fhir"]
    monkeypatch.setenv("EXCHANGE_SERVER_ALIASES", "old-name.example/fhir")
    with pytest.raises(ValueError, match="alias"):
        Settings()


def test_canonical_and_non_restful_references_stay_allowed(community: Community) -> None:
    body = _obs(meta={"profile": ["http://other.example/fhir/StructureDefinition/vitals"]},
                derivedFrom=[{"reference": "#m1"}],
                contained=[{"resourceType": "Media", "id": "m1", "status": "completed",
                            "content": {"url": "http://other.example/images/1.png"}}],
                basedOn=[{"reference": "urn:oid:1.2.840.113619.2.62"}])
    r = community.http.post("/fhir/Observation", json=body, headers=_headers(community))
    assert r.status_code == 201, r.text


def test_a_consent_names_its_actors_as_the_policies_read_them(community: Community) -> None:
    """The policies match an actor by Type/id: a nested deny of this exchange's own
    absolute URL for clinic B would deny no one, so it is refused, not read as wider."""
    from consent.model import build_consent

    consent = build_consent("carol", None, ["TREAT"], organization_kind="clinic",
                            when=community.clock.now())
    own = f"{community.services.settings.fhir_base}/Organization/clinic-b"
    consent["provision"]["provision"] = [{"type": "deny", "actor": [{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                       "v3-ParticipationType", "code": "IRCP"}]},
        "reference": {"reference": own}}]}]
    r = community.http.post("/fhir/Consent", json=consent,
                            headers={**community.resident_headers("carol"),
                                     "Content-Type": FHIR})
    assert r.status_code == 422, r.text
    assert _issue(r)["expression"] == [
        "Consent.provision.provision.actor[0].reference.reference"]
    consent["provision"]["provision"][0]["actor"][0]["reference"] = {
        "reference": "Organization/clinic-b"}
    r = community.http.post("/fhir/Consent", json=consent,
                            headers={**community.resident_headers("carol"),
                                     "Content-Type": FHIR})
    assert r.status_code == 201, r.text


def test_a_patch_that_nests_the_resource_too_deep_is_400_not_a_traceback(
        community: Community) -> None:
    """Found by fuzzing: each copy of a subtree into itself doubles its depth, and six of
    them were a RecursionError and a 500."""
    inner: dict[str, Any] = {"url": "http://example.org/x", "valueString": "z"}
    for _ in range(20):
        inner = {"url": "http://example.org/x", "extension": [inner]}
    ops: list[dict[str, Any]] = [{"op": "add", "path": "/extension", "value": [inner]}]
    leaf = "/extension/0" * 20
    for _ in range(6):
        ops.append({"op": "copy", "from": "/extension/0",
                    "path": "/extension/0" + leaf + "/extension"})
        leaf = leaf + "/extension" + leaf
    r = community.http.patch("/fhir/Observation/alice-glu-0", content=orjson.dumps(ops),
                             headers={**_headers(community),
                                      "Content-Type": "application/json-patch+json"})
    assert r.status_code == 400, r.text[:300]
    assert "nested deeper" in _issue(r)["diagnostics"]
    read = community.http.get("/fhir/Observation/alice-glu-0",
                              headers=community.headers("clinic-a")).json()
    assert read["meta"]["versionId"] == "1"
