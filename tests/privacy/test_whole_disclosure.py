"""The k-anonymity guard judges the whole disclosure (#15.4): whatever ``_elements``,
``_summary``, ``_include`` or type carries a resident, their quasi-identifiers leave as
the guard allows, a resident it suppresses leaves in no type, and a page is ordered by
pseudonym. Over the HTTP API, with the research lab (k=11) and the hub (k=5)."""

from collections import Counter
from typing import Any

import pytest

from consent.model import build_consent
from exchange.fhir.validation import validate_resource
from tests.community import Community, observation, patient

LAB = ("lab", "HRESCH")


@pytest.fixture()
def town(community: Community) -> Community:
    """24 women born in the 1940s, one man born in 1925 (an outlier the guard must
    suppress), each with two glucose readings, all consenting to the lab and the hub."""
    repo = community.services.repository
    people, records = [], []
    for i in range(25):
        pid = f"t{i:02d}"
        gender, birth = ("male", "1925-06-01") if i == 24 else ("female",
                                                              f"194{i % 10}-0{1 + i % 9}-11")
        people.append(patient(pid, "测", f"试{i}", f"3301061940010{i:05d}", f"1390000{i:04d}",
                              gender, birth))
        for n, when in enumerate(("2024-03-01T09:15:00+08:00", "2024-05-02T10:40:00+08:00")):
            records.append(observation(f"{pid}-g{n}", pid, "15074-8", when, 5.0 + i / 10))
        for organization, purpose in (("Organization/lab", "HRESCH"),
                                      ("Organization/hub", "CAREMGT")):
            consent = build_consent(pid, organization, [purpose],
                                    classes=["Patient", "Observation", "Condition"])
            consent["id"] = f"{pid}-{purpose.lower()}"
            records.append(consent)
    repo.ingest([validate_resource(r, here=repo.here) for r in people])
    repo.ingest([validate_resource(r, here=repo.here) for r in records])
    for i in range(25):
        community.services.decider.invalidate(f"t{i:02d}")
    return community


def _get(community: Community, path: str, who: tuple[str, str] = LAB) -> dict[str, Any]:
    r = community.http.get(f"/fhir/{path}", headers=community.headers(*who))
    assert r.status_code == 200, (path, r.text)
    return dict(r.json())


def _matches(bundle: dict[str, Any], mode: str = "match") -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def test_elements_do_not_narrow_what_the_guard_judges(town: Community) -> None:
    full = _matches(_get(town, "Patient?_count=100"))
    slim = _matches(_get(town, "Patient?_count=100&_elements=gender"))
    assert len(full) == len(slim) >= 11  # narrowing the elements suppresses no fewer
    assert {p["id"]: p.get("gender") for p in full} == {p["id"]: p.get("gender") for p in slim}
    hub_full = _matches(_get(town, "Patient?_count=100", ("hub", "CAREMGT")))
    hub_slim = _matches(_get(town, "Patient?_count=100&_elements=address",
                             ("hub", "CAREMGT")))
    assert {p["id"] for p in hub_full} == {p["id"] for p in hub_slim}
    assert [p.get("address") for p in hub_full] == [p.get("address") for p in hub_slim]


def test_a_suppressed_resident_leaves_in_no_type(town: Community) -> None:
    patients = _matches(_get(town, "Patient?_count=100"))
    released = {p["id"] for p in patients}
    observations = _matches(_get(town, "Observation?_count=500"))
    subjects = {o["subject"]["reference"].split("/")[1] for o in observations}
    assert len(released) < 25  # the outlier, at least, is suppressed
    assert subjects == released and len(observations) == 2 * len(released)
    total = _get(town, "Observation?_summary=count")["total"]
    assert total == len(observations)  # the suppressed residents' readings are not counted
    with_patients = _get(town, "Observation?_count=500&_include=Observation:subject")
    assert {p["id"] for p in _matches(with_patients, "include")} == released
    # the guard's classes, as released, all hold k
    classes = Counter((p.get("gender"), str(p.get("extension"))) for p in patients)
    assert min(classes.values()) >= 11


def test_a_page_is_ordered_by_pseudonym(town: Community) -> None:
    pages, offset = [], 0
    while True:
        bundle = _get(town, f"Observation?_count=7&_offset={offset}")
        page = [o["id"] for o in _matches(bundle)]
        if not page:
            break
        pages.extend(page)
        offset += 7
    assert len(pages) >= 22 and pages == sorted(pages)
    backwards = [o["id"] for o in _matches(_get(town, "Observation?_count=100&_sort=-_id"))]
    assert backwards == sorted(pages, reverse=True)
    patients = [p["id"] for p in _matches(_get(town, "Patient?_count=100"))]
    assert patients == sorted(patients)
    # a sort by anything but the pseudonym is refused, unrun
    r = town.http.get("/fhir/Observation?_sort=code", headers=town.headers(*LAB))
    assert r.status_code == 400


def test_time_of_day_and_exact_values_do_not_leave(town: Community) -> None:
    observations = _matches(_get(town, "Observation?_count=500"))
    assert all(len(o["effectiveDateTime"]) == 10 for o in observations)  # a date only
    # A resident's two readings had the same value: each leaves with noise of its own.
    by_subject: dict[str, list[float]] = {}
    for o in observations:
        by_subject.setdefault(o["subject"]["reference"], []).append(
            o["valueQuantity"]["value"])
    assert sum(len(set(v)) == 1 for v in by_subject.values()) <= 2
    assert all("unit" not in o["valueQuantity"] for o in observations)  # no UCUM code
    first = {o["id"]: o["effectiveDateTime"] for o in observations}
    again = {o["id"]: o["effectiveDateTime"] for o in _matches(
        _get(town, "Observation?_count=500"))}
    assert first == again  # the same shifts and noise every time: nothing averages away
