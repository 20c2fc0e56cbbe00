"""Compartment search, _summary, _pretty and Prefer: handling=lenient, over HTTP; each
stays behind the decision (a compartment search of a hidden resident finds nothing, a
lenient search never ignores a filter silently)."""

from tests.community import Community


def test_compartment_search_is_a_search_within_one_record(community: Community) -> None:
    h = community.headers("clinic-a")
    r = community.http.get("/fhir/Patient/alice/Observation?code=15074-8", headers=h)
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in r.json()["entry"]} == {
        "alice-glu-0", "alice-glu-1", "alice-glu-2"}
    # bob's record is hidden from clinic-a: exactly what a search by patient=bob finds.
    hidden = community.http.get("/fhir/Patient/bob/Observation", headers=h).json()
    by_param = community.http.get("/fhir/Observation?patient=bob", headers=h).json()
    assert hidden["total"] == by_param["total"] == 0
    assert community.http.get("/fhir/Patient/bad$id/Observation",
                              headers=h).status_code == 400
    # The hub knows residents by pseudonym only: a compartment search by a real id is
    # a search on what its profile hides, refused unrun (#15.4).
    hub = community.headers("hub", "CAREMGT")
    assert community.http.get("/fhir/Patient/bob/Observation",
                              headers=hub).status_code == 400


def test_summary_keeps_what_r4_says_and_tags_it(community: Community) -> None:
    h = community.headers("clinic-a")
    subset = community.http.get("/fhir/Patient?_id=alice&_summary=true", headers=h).json()
    patient = subset["entry"][0]["resource"]
    assert {"name", "gender", "birthDate"} <= set(patient)
    assert "SUBSETTED" in {t["code"] for t in patient["meta"]["tag"]}
    text = community.http.get("/fhir/Observation?_id=alice-glu-0&_summary=text",
                              headers=h).json()["entry"][0]["resource"]
    assert set(text) <= {"resourceType", "id", "meta", "text", "code", "status"}
    assert "valueQuantity" not in text
    data = community.http.get("/fhir/Observation?_id=alice-glu-0&_summary=data",
                              headers=h).json()["entry"][0]["resource"]
    assert "valueQuantity" in data and "text" not in data
    count = community.http.get("/fhir/Observation?_summary=count", headers=h).json()
    assert count["total"] == 3 and "entry" not in count
    # A summary never adds what minimization removed: the insurer's Patient stays bare.
    insurer = community.http.get("/fhir/Patient?_summary=true",
                                 headers=community.headers("insurer", "HPAYMT")).json()
    assert all("telecom" not in e["resource"] and "address" not in e["resource"]
               for e in insurer["entry"] if e["search"]["mode"] == "match")


def test_pretty_indents_and_changes_nothing_else(community: Community) -> None:
    h = community.headers("clinic-a")
    plain = community.http.get("/fhir/Observation?_id=alice-glu-0", headers=h)
    pretty = community.http.get("/fhir/Observation?_id=alice-glu-0&_pretty=true", headers=h)
    assert b"\n  " in pretty.content and b"\n" not in plain.content
    first, second = plain.json(), pretty.json()
    for bundle in (first, second):
        bundle.pop("link")
    assert first == second


def test_strict_by_default_lenient_when_asked_and_says_what_it_ignored(
        community: Community) -> None:
    h = community.headers("clinic-a")
    query = "/fhir/Observation?code=15074-8&colour=red&category:below=x"
    assert community.http.get(query, headers=h).status_code == 400
    r = community.http.get(query, headers={**h, "Prefer": "handling=lenient"})
    assert r.status_code == 200
    bundle = r.json()
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    said = outcomes[0]["issue"][0]["diagnostics"]
    assert "colour" in said and "category:below" in said
    # What it understood still filters: only alice's glucose readings.
    assert bundle["total"] == 3
    # A malformed value is never ignored, lenient or not.
    bad = community.http.get("/fhir/Observation?date=2023-13-01",
                             headers={**h, "Prefer": "handling=lenient"})
    assert bad.status_code == 400


def test_a_search_of_several_types_pages_across_them(community: Community) -> None:
    h = community.headers("clinic-a")
    whole = community.http.get("/fhir?_type=Patient,Observation,Claim&_count=100",
                               headers=h).json()
    found = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in whole["entry"]]
    # alice's Patient and her three visible Observations; no Claim (treatment does not
    # open it), nothing of bob or carol, nothing labelled.
    assert found[0] == ("Patient", "alice")  # the types in the order asked
    assert sorted(found[1:]) == [("Observation", "alice-glu-0"), ("Observation", "alice-glu-1"),
                                 ("Observation", "alice-glu-2")]
    assert whole["total"] == 4
    pages = []
    for offset in range(0, 4, 3):
        page = community.http.get(f"/fhir?_type=Patient,Observation&_count=3&_offset={offset}",
                                  headers=h).json()
        pages.extend((e["resource"]["resourceType"], e["resource"]["id"])
                     for e in page.get("entry", []))
        assert page["total"] == 4
    assert pages == found
    assert community.http.get("/fhir?_type=Patient,Observation&code=15074-8",
                              headers=h).status_code == 400  # not every type has code
    assert community.http.get("/fhir?_count=2", headers=h).status_code == 400
    lenient = community.http.get("/fhir?_type=Observation&code=15074-8",
                                 headers={**h, "Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    said = [e["resource"]["issue"][0]["diagnostics"] for e in lenient.json()["entry"]
            if e["search"]["mode"] == "outcome"]
    assert said and "code" in said[0]
