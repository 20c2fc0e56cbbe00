"""Search across the real HTTP API: results, totals and links count only what may be seen."""

from urllib.parse import urlparse

from tests.community import LOINC, Community


def search(community: Community, path: str, headers: dict[str, str], **params: str) -> dict:
    r = community.http.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def ids(bundle: dict, mode: str | None = None) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])
            if mode is None or e["search"]["mode"] == mode}


def test_search_returns_only_consented_residents(community: Community) -> None:
    a = search(community, "/fhir/Observation", community.headers("clinic-a"))
    assert a["total"] == 3
    assert ids(a) == {"alice-glu-0", "alice-glu-1", "alice-glu-2"}
    b = search(community, "/fhir/Patient", community.headers("clinic-b"))
    assert b["total"] == 1 and ids(b) == {"bob"}


def test_clinic_b_cannot_reach_alice_by_any_search(community: Community) -> None:
    h = community.headers("clinic-b")
    probes = [
        ("/fhir/Observation", {"patient": "Patient/alice"}),
        ("/fhir/Observation", {"subject": "alice"}),
        ("/fhir/Patient", {"_id": "alice"}),
        ("/fhir/Patient", {"name": "王"}),
        ("/fhir/Patient", {"identifier": "330106194203081228"}),
        ("/fhir/Observation", {"patient.name": "王"}),
        ("/fhir/Observation", {"subject:Patient.identifier": "330106194203081228"}),
        ("/fhir/Patient", {"_revinclude": "Observation:patient"}),
        ("/fhir/Observation", {"_include": "Observation:patient"}),
        ("/fhir/Observation/_history", {}),
        ("/fhir/Patient/_history", {}),
    ]
    for path, params in probes:
        bundle = search(community, path, h, **params)
        found = {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}
        assert not any(i.startswith("alice") for i in found), (path, params, found)
        assert "alice" not in str(bundle.get("entry", "")), (path, params)
    assert community.http.get("/fhir/Patient/alice/_history", headers=h).status_code == 404
    assert community.http.get("/fhir/Observation/alice-glu-0/_history/1",
                              headers=h).status_code == 404


def test_paging_links_and_totals_count_only_visible(community: Community) -> None:
    h = community.headers("clinic-a")
    first = search(community, "/fhir/Observation", h, _count="2", _sort="date")
    assert first["total"] == 3 and len(first["entry"]) == 2
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    parsed = urlparse(nxt)
    second = community.http.get(f"{parsed.path}?{parsed.query}", headers=h).json()
    assert len(second["entry"]) == 1
    assert not any(link["relation"] == "next" for link in second["link"])
    assert ids(first) | ids(second) == {"alice-glu-0", "alice-glu-1", "alice-glu-2"}


def test_summary_count_and_elements(community: Community) -> None:
    h = community.headers("clinic-a")
    counted = search(community, "/fhir/Observation", h, _summary="count")
    assert counted["total"] == 3 and "entry" not in counted
    slim = search(community, "/fhir/Patient", h, _elements="gender")
    patient = slim["entry"][0]["resource"]
    assert patient["gender"] == "female" and "name" not in patient
    assert patient["meta"]["tag"][0]["code"] == "SUBSETTED"


def test_token_date_and_sort_parameters(community: Community) -> None:
    h = community.headers("clinic-a")
    assert ids(search(community, "/fhir/Observation", h, code=f"{LOINC}|15074-8")) \
        == {"alice-glu-0", "alice-glu-1", "alice-glu-2"}
    assert ids(search(community, "/fhir/Observation", h, code="15074-8", date="ge2023-01-01")) \
        == {"alice-glu-1", "alice-glu-2"}
    assert ids(search(community, "/fhir/Observation", h, date="lt2023")) == {"alice-glu-0"}
    assert ids(search(community, "/fhir/Observation", h, date="2023-06")) == {"alice-glu-1"}
    assert ids(search(community, "/fhir/Observation", h, date="ne2023-06")) \
        == {"alice-glu-0", "alice-glu-2"}
    assert search(community, "/fhir/Observation", h, code="http://other|15074-8")["total"] == 0
    ordered = search(community, "/fhir/Observation", h, _sort="-date")
    assert [e["resource"]["id"] for e in ordered["entry"]] == \
        ["alice-glu-2", "alice-glu-1", "alice-glu-0"]
    assert ids(search(community, "/fhir/Patient", h, gender="female", birthdate="1942")) \
        == {"alice"}
    assert ids(search(community, "/fhir/Patient", h, name="王秀")) == {"alice"}
    assert ids(search(community, "/fhir/Patient", h, name="秀英")) == {"alice"}
    assert search(community, "/fhir/Patient", h, name="李")["total"] == 0
    assert ids(search(community, "/fhir/Condition", h, code="I10")) == {"alice-htn"}
    assert ids(search(community, "/fhir/Observation", h, status="final",
                      category="vital-signs")) == {"alice-glu-0", "alice-glu-1", "alice-glu-2"}
    recent = search(community, "/fhir/Observation", h, _lastUpdated="ge2000-01-01")
    assert recent["total"] == 3


def test_include_and_revinclude_within_the_decision(community: Community) -> None:
    h = community.headers("clinic-a")
    inc = search(community, "/fhir/Observation", h, _include="Observation:patient")
    assert ids(inc, "include") == {"alice"}
    rev = search(community, "/fhir/Patient", h, _revinclude="Observation:patient")
    assert ids(rev, "match") == {"alice"}
    assert ids(rev, "include") == {"alice-glu-0", "alice-glu-1", "alice-glu-2"}  # no PSY one


def test_chained_search_stays_inside_the_decision(community: Community) -> None:
    h = community.headers("clinic-a")
    assert search(community, "/fhir/Observation", h, **{"patient.name": "王"})["total"] == 3
    assert search(community, "/fhir/Observation", h, **{"patient.name": "李"})["total"] == 0


def test_malformed_and_unknown_parameters_are_400(community: Community) -> None:
    h = community.headers("clinic-a")
    for params in ({"nonsense": "1"}, {"date": "2023-13-01"}, {"date": "xx2023"},
                   {"_count": "-1"}, {"_sort": "status"}, {"code:above": "x"},
                   {"_include": "Observation:status"}, {"_summary": "nonsense"},
                   {"patient.nonsense": "x"}, {"name:contains": "王" * 17},
                   {"code": "a|b|c"}, {"code:missing": "maybe"}, {"date:not": "2020"},
                   {"value-quantity": "five"}, {"code:of-type": "a|b"}):
        r = community.http.get("/fhir/Observation" if "name:contains" not in params
                               else "/fhir/Patient", params=params, headers=h)
        assert r.status_code == 400, params
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "error"


def test_post_search_matches_get(community: Community) -> None:
    h = community.headers("clinic-a")
    r = community.http.post("/fhir/Observation/_search", data={"date": "ge2023"}, headers=h)
    assert r.status_code == 200
    assert ids(r.json()) == {"alice-glu-1", "alice-glu-2"}


def test_insurer_sees_only_payment_types(community: Community) -> None:
    h = community.headers("insurer", "HPAYMT")
    assert ids(search(community, "/fhir/Claim", h)) == {"bob-claim"}
    assert search(community, "/fhir/Observation", h)["total"] == 0


def test_resident_searches_own_record_only(community: Community) -> None:
    h = community.resident_headers("carol")
    bundle = search(community, "/fhir/Observation", h)
    assert {i for i in ids(bundle)} == {"carol-glu-0", "carol-glu-1", "carol-glu-2", "carol-psy"}


def test_condition_subject_searches_the_residents_conditions(community: Community) -> None:
    """Condition's ``subject`` is HL7's own definition (Patient or Group), not the package's
    example SearchParameter of the same code that points it at Organizations."""
    got = community.http.get("/fhir/Condition?subject=Patient/alice",
                             headers=community.headers("clinic-a"))
    assert got.status_code == 200, got.text
    assert [e["resource"]["id"] for e in got.json()["entry"]] == ["alice-htn"]
