"""Search in SQL: the decision's filters (allowed residents, withheld labels, opened
categories) apply before counting and paging; includes, chains and candidates."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exchange.app import build_services
from exchange.clock import FixedClock
from exchange.config import Settings
from exchange.fhir.data_classes import ClassRule, Grant
from exchange.fhir.search import parse_search
from exchange.privacy.blind_index import BlindIndex
from exchange.store.resources import ResourceVersions, Write
from exchange.store.search_sql import ResourceSearch
from tests.community import LOINC, observation, patient

CATEGORIES = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
GLUCOSE = f"{LOINC}|2345-7"


def lab(oid: str, pid: str, when: str) -> dict[str, Any]:
    obs = observation(oid, pid, "2345-7", when, 6.1)
    obs["category"] = [{"coding": [{"system": CATEGORIES, "code": "laboratory"}]}]
    return obs


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[ResourceVersions, ResourceSearch]]:
    services = build_services(Settings(data_dir=tmp_path),
                              clock=FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    blind = BlindIndex(services.keys.derive("blind-index"))
    versions = ResourceVersions(services.engine, services.vault, blind, services.clock)
    versions.ingest([
        patient("ann", "Li", "Ann", "R1", "555-0101"),
        patient("bob", "Wang", "Bob", "R2", "555-0102", gender="male"),
        observation("ann-1", "ann", "2345-7", "2026-01-01", 5.4),
        observation("ann-2", "ann", "2345-7", "2026-01-03", 5.9),
        lab("ann-lab", "ann", "2026-01-02"),
        observation("bob-1", "bob", "2345-7", "2026-01-02", 7.2),
        observation("bob-psy", "bob", "2345-7", "2026-01-04", 7.0, label="PSY"),
    ])
    yield versions, ResourceSearch(services.engine, blind, versions)
    services.engine.dispose()


def ids(found: tuple[int, list[Any]]) -> list[str]:
    return [r.resource_id for r in found[1]]


def test_a_search_counts_and_returns_only_the_allowed_residents(
        parts: tuple[ResourceVersions, ResourceSearch]) -> None:
    _, search = parts
    query = parse_search("Observation", [("code", GLUCOSE)])
    total, rows = search.search(query, ["ann"])
    assert total == 3 and {r.patient_id for r in rows} == {"ann"}
    assert search.search(query, None)[0] == 5
    assert search.search(query, [])[0] == 0
    assert search.search(query, ["bob", "nobody"])[0] == 2


def test_withheld_labels_are_neither_counted_nor_returned(
        parts: tuple[ResourceVersions, ResourceSearch]) -> None:
    _, search = parts
    query = parse_search("Observation", [("code", GLUCOSE)])
    found = search.search(query, ["bob"], withhold=[{"system": ACT_CODE, "code": "PSY"}])
    assert found[0] == 1 and ids(found) == ["bob-1"]


def test_opened_categories_narrow_only_their_resident(
        parts: tuple[ResourceVersions, ResourceSearch]) -> None:
    _, search = parts
    vitals = ClassRule(grants=(Grant(frozenset({(CATEGORIES, "vital-signs")}), frozenset()),),
                       excepted=frozenset())
    query = parse_search("Observation", [("code", GLUCOSE)])
    found = search.search(query, ["ann", "bob"], classes={"ann": vitals})
    assert found[0] == 4 and "ann-lab" not in ids(found)
    nothing = ClassRule(grants=(), excepted=frozenset())
    assert search.search(query, ["ann", "bob"], classes={"ann": nothing})[0] == 2


def test_sorting_paging_and_a_count_only_summary(
        parts: tuple[ResourceVersions, ResourceSearch]) -> None:
    _, search = parts
    pairs = [("patient", "Patient/ann"), ("_sort", "-date")]
    assert ids(search.search(parse_search("Observation", pairs), None)) \
        == ["ann-2", "ann-lab", "ann-1"]
    page = search.search(parse_search("Observation", [*pairs, ("_count", "1"),
                                                      ("_offset", "1")]), None)
    assert page[0] == 3 and ids(page) == ["ann-lab"]
    summary = search.search(parse_search("Observation", [*pairs, ("_summary", "count")]), None)
    assert summary == (3, [])
    dated = parse_search("Observation", [("date", "ge2026-01-03")])
    assert sorted(ids(search.search(dated, None))) == ["ann-2", "bob-psy"]


def test_chains_candidates_and_includes(
        parts: tuple[ResourceVersions, ResourceSearch]) -> None:
    versions, search = parts
    chained = parse_search("Observation", [("subject:Patient.family", "Wang")])
    assert sorted(ids(search.search(chained, None))) == ["bob-1", "bob-psy"]
    assert search.candidate_residents(parse_search("Observation", [("code", GLUCOSE)])) \
        == {"ann", "bob"}
    assert search.candidate_residents(chained) == {"bob"}
    assert search.residents_with("Patient") == {"ann", "bob"}

    query = parse_search("Observation", [("patient", "Patient/bob"),
                                         ("_include", "Observation:subject")])
    _, rows = search.search(query, None)
    included = search.included(rows, query.includes, query.revincludes)
    assert [r.reference for r in included] == ["Patient/bob"]
    back = parse_search("Patient", [("_id", "ann"), ("_revinclude", "Observation:subject")])
    _, patients = search.search(back, None)
    assert sorted(r.resource_id for r in search.included(patients, back.includes,
                                                         back.revincludes)) \
        == ["ann-1", "ann-2", "ann-lab"]
    versions.apply([Write("delete", "Patient", "bob")])
    assert search.included(rows, query.includes, query.revincludes) == []
