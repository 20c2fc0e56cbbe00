"""The search indexes at rest (#15): a copy of the database file, read without any key,
holds no birth date and no term whose frequency singles out the holders of a code; and
searches by birth date, sorted by it, and by a sensitive code still give exactly the
answer a brute-force filter of the same caller's records gives.

The attacker here has the SQLite file alone and Python's ``sqlite3``. The brute force is
the same caller's unfiltered search, filtered in the test by FHIR's rules; for a code, its
search of each record in turn (a search across residents withholds every label that any
of them keeps closed, so only one record at a time shows all that its resident opened)."""

import random
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from consent.model import build_consent
from exchange.app import build_services, create_app
from exchange.cli import app
from exchange.decisions.labels import label
from exchange.fhir.dates import parse_range
from exchange.fhir.search import DateValue, parse_search
from exchange.fhir.validation import validate_resource
from exchange.store.coarse_dates import span_could_match, span_must_match
from exchange.store.indexing import calendar_term, calendar_terms, coarse_span
from exchange.store.search_sql import _date_admits
from tests.community import Community, build_community, condition, patient

ICD10 = "http://hl7.org/fhir/sid/icd-10"
SENSITIVE = f"{ICD10}|F32.9"  # depression: labelled PSY by the policies' code lists
RESIDENTS, HOLDERS = 60, 18
# Births on the edges of the index's five-year spans, and of a day in the community's
# zone (midnight in Hangzhou is 16:00 UTC the day before), with partial dates among them.
EDGES = ["1945-01-01", "1944-12-31", "1950-01-01", "1949-12-31", "1949", "1952-07",
         "1940-01-01", "1939-12-31", "1955-01-01", "1945-01-01"]


@dataclass
class Town:
    community: Community
    clinic: dict[str, str]  # clinic-a's TREAT headers
    holders: set[str]  # residents with a depression Condition
    births: dict[str, str]  # every Patient's birthDate


def resident_records(rng: random.Random, count: int, holders: int,
                     prefix: str = "r") -> tuple[list[dict[str, Any]], dict[str, str]]:
    records: list[dict[str, Any]] = []
    births: dict[str, str] = {}
    for i in range(count):
        pid = f"{prefix}{i:03d}"
        birth = EDGES[i] if i < len(EDGES) else \
            (date(1925, 1, 1) + timedelta(days=rng.randrange(40 * 365))).isoformat()
        births[pid] = birth
        records.append(patient(pid, "王" if i % 3 else "李", f"名{i}", f"3301061900{i:08d}",
                               f"139{i:08d}", "female" if i % 2 else "male", birth))
        records.append(condition(f"{pid}-htn", pid, "I10", "2015-04-01"))
        if i < holders:
            records.append(condition(f"{pid}-dep", pid, "F32.9", "2020-03-01"))
    return records, births


def consents_for(count: int, prefix: str = "r") -> list[dict[str, Any]]:
    """Three in four consent to clinic-a for treatment, mental health included."""
    return [{**build_consent(f"{prefix}{i:03d}", "Organization/clinic-a", ["TREAT"],
                             labels=["PSY"]),
             "id": f"{prefix}{i:03d}-treat"} for i in range(count) if i % 4 != 3]


def populate(community: Community, count: int, holders: int, seed: int) -> dict[str, str]:
    services = community.services
    here = services.repository.here
    records, births = resident_records(random.Random(seed), count, holders)
    services.repository.ingest([label(services.decider, validate_resource(r, here=here))
                                for r in records])
    services.repository.ingest(consents_for(count))
    return births


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Town]:
    community = build_community(tmp_path_factory.mktemp("town"))
    births = populate(community, RESIDENTS, HOLDERS, seed=15)
    births.update(alice="1942-03-08", bob="1938-05-17", carol="1950-01-01")
    clinic = community.headers("clinic-a", scope="system/*.cruds")
    # Written over the API too: a new resident, and a corrected birth date.
    new = patient("x", "欧阳", "明珠", "330106195511114446", "13700009999", birth="1955-11-11")
    del new["id"]
    created = community.http.post("/fhir/Patient", json=new, headers=clinic)
    assert created.status_code == 201, created.text
    births[created.json()["id"]] = "1955-11-11"
    alice = community.http.get("/fhir/Patient/alice", headers=clinic).json()
    alice["birthDate"] = births["alice"] = "1942-03-09"
    assert community.http.put("/fhir/Patient/alice", json=alice,
                              headers=clinic).status_code == 200
    yield Town(community, clinic, {f"r{i:03d}" for i in range(HOLDERS)}, births)
    community.services.engine.dispose()


def search(town: Town, query: str) -> list[dict[str, Any]]:
    r = town.community.http.get(f"/fhir/{query}", headers=town.clinic)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


def zone(town: Town) -> tzinfo:
    return town.community.services.settings.zone


def admits(prefix: str, span: tuple[datetime, datetime],
           asked: tuple[datetime, datetime]) -> bool:
    """FHIR's comparison of a stored range with a searched one, as ranges."""
    (low, high), (a_low, a_high) = span, asked
    return {"eq": low >= a_low and high <= a_high, "ne": low < a_low or high > a_high,
            "gt": high > a_high, "ge": high > a_low, "lt": low < a_low,
            "le": low < a_high}[prefix]


def brute_force(town: Town, bounds: list[tuple[str, str]]) -> set[str]:
    """The visible Patients whose birth date meets every bound, filtered here."""
    every = search(town, "Patient?_count=1000")
    return {p["id"] for p in every if "birthDate" in p and all(
        admits(prefix, parse_range(p["birthDate"], zone(town)),
               parse_range(value, zone(town))) for prefix, value in bounds)}


def by_birth(town: Town, patients: list[dict[str, Any]], descending: bool) -> list[str]:
    """FHIR's order by birth date (its range's start), ties by last change then id."""
    ordered = sorted(patients, key=lambda p: (p["meta"]["lastUpdated"], p["id"]))
    ordered.sort(key=lambda p: parse_range(p["birthDate"], zone(town))[0], reverse=descending)
    return [p["id"] for p in ordered]


# -- the attacker, with the database file alone --------------------------------------------


def day_in_clear(conn: sqlite3.Connection, day: str, zone: tzinfo) -> list[str]:
    """Where a birth date reads in clear: as text in any text or blob column, or as the
    instants its day begins and ends at, both in one row (a date range in clear)."""
    start, end = parse_range(day, zone)
    forms = {f"{start:%Y-%m-%d %H:%M:%S}", f"{end:%Y-%m-%d %H:%M:%S}"}
    found = []
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            texts = [v for v in row if isinstance(v, str)]
            blobs = [v for v in row if isinstance(v, bytes)]
            if any(v == day or f'"{day}"' in v for v in texts) or \
                    any(f'"{day}"'.encode() in b for b in blobs) or \
                    forms <= {v[:19] for v in texts}:
                found.append(table)
    return found


def attacker(town: Town) -> sqlite3.Connection:
    town.community.raw_db()  # folds the WAL into the file
    path = town.community.services.settings.data_dir / "exchange.db"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_no_birth_date_is_in_clear_in_any_table(town: Town) -> None:
    raw = town.community.raw_db()
    conn = attacker(town)
    try:
        for day in town.births.values():
            assert f'"{day}"'.encode() not in raw, day
            assert day_in_clear(conn, day, zone(town)) == [], day
        # What the index keeps of a birth date is its five-year span, for everyone alike.
        spans = {row for row in conn.execute(
            "SELECT low, high FROM date_index WHERE resource_type = 'Patient'")}
        assert 3 <= len(spans) <= 10
    finally:
        conn.close()


def test_a_date_of_death_is_kept_as_its_span_too(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    try:
        community.services.repository.ingest([
            {**patient("dora", "赵", "多拉", "330106193001011234", "13600000000",
                       birth="1930-02-02"), "deceasedDateTime": "2024-06-07T03:04:00+08:00"},
            {"resourceType": "RelatedPerson", "id": "dora-son",
             "patient": {"reference": "Patient/dora"}, "birthDate": "1961-08-19"}])
        raw = community.raw_db()
        path = community.services.settings.data_dir / "exchange.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            for day in ("1930-02-02", "1961-08-19"):
                assert day_in_clear(conn, day, community.services.settings.zone) == [], day
            lows = {low for (low,) in conn.execute(
                "SELECT low FROM date_index WHERE resource_id IN ('dora', 'dora-son')")}
        # the minute of death, as sent or as the UTC instant it is
        assert b"2024-06-07T03:04" not in raw and b"2024-06-06 19:04" not in raw
        assert lows == {"2019-12-31 16:00:00.000000", "1929-12-31 16:00:00.000000",
                        "1959-12-31 16:00:00.000000"}
        repository = community.services.repository
        for day, found in (("2024-06-07", ["dora"]), ("2024-06-08", []),
                           ("2024-06-06T19:04:00Z", ["dora"])):
            query = parse_search("Patient", [("death-date", day)],
                                 zone=community.services.settings.zone)
            assert [r.resource_id for r in repository.search(query, None)[1]] == found, day
    finally:
        community.services.engine.dispose()


def test_counting_blind_tokens_singles_out_no_holder(town: Town) -> None:
    """Counted across the table, each term of a resident's record names that resident
    alone: no token's residents are the holders of the sensitive code, none is held by
    as many residents as hold it, and none by two residents at all."""
    conn = attacker(town)
    try:
        residents: dict[tuple[str, str, str], set[str]] = defaultdict(set)
        for rtype, param, term, pid in conn.execute(
                "SELECT t.resource_type, t.param, t.term, r.patient_id FROM term_index t "
                "JOIN resource r ON r.resource_type = t.resource_type AND "
                "r.resource_id = t.resource_id AND r.is_current "
                "WHERE r.patient_id IS NOT NULL"):
            residents[(rtype, param, term)].add(pid)
        held = [k for k, s in residents.items() if k[:2] == ("Condition", "code")
                and s <= town.holders]
    finally:
        conn.close()
    assert len(held) > HOLDERS  # the holders' codes are indexed, each under its resident
    assert all(s != town.holders for s in residents.values())
    assert HOLDERS not in {len(s) for s in residents.values()}
    assert max(len(s) for s in residents.values()) == 1


# -- the same answers over the API ----------------------------------------------------------


def sensitive_by_brute_force(town: Town) -> set[str]:
    """The depression Conditions in each record clinic-a may see, one record at a time
    (a search across residents withholds every label any of them keeps closed)."""
    found = set()
    for p in search(town, "Patient?_count=1000"):
        for c in search(town, f"Patient/{p['id']}/Condition?_count=1000"):
            if any(f"{x['system']}|{x['code']}" == SENSITIVE for x in c["code"]["coding"]):
                found.add(c["id"])
    return found


def test_a_sensitive_code_is_found_in_the_records_that_opened_it(town: Town) -> None:
    found = {c["id"] for c in search(town, f"Condition?code={SENSITIVE}&_count=1000")}
    consented = {f"r{i:03d}-dep" for i in range(HOLDERS) if i % 4 != 3}
    assert found == sensitive_by_brute_force(town) == consented
    assert {c["id"] for c in search(town, "Condition?code=F32.9&_count=1000")} == consented
    assert search(town, "Condition?code=F32.9&patient=r003") == []  # no consent


def test_names_and_the_compartment_still_find_their_records(town: Town) -> None:
    named = {p["id"] for p in search(town, "Patient?name=李&_count=1000")}
    every = search(town, "Patient?_count=1000")
    assert named == {p["id"] for p in every if p["name"][0]["family"] == "李"} != set()
    own = search(town, "Patient/r004/Condition?code=F32.9")
    assert [c["id"] for c in own] == ["r004-dep"]


@pytest.mark.parametrize("bounds", [
    [("eq", "1945-01-01")], [("eq", "1949")], [("eq", "1949-12")], [("ge", "1945-01-01"),
                                                                     ("lt", "1950-01-01")],
    [("ge", "1940-03-02"), ("lt", "1951-07-15")], [("gt", "1949-12-31")],
    [("le", "1944-12-31")], [("ne", "1950-01-01")], [("lt", "1949-12-31T16:00:00Z")],
    [("ge", "1900")], [("lt", "1900")]])
def test_a_birth_date_search_gives_the_exact_answer(town: Town,
                                                    bounds: list[tuple[str, str]]) -> None:
    query = "&".join(f"birthdate={p}{v}" for p, v in bounds)
    found = {p["id"] for p in search(town, f"Patient?{query}&_count=1000")}
    assert found == brute_force(town, bounds)


def test_sorted_by_birth_date_in_pages(town: Town) -> None:
    every = search(town, "Patient?_count=1000")
    for descending in (False, True):
        sort = "-birthdate" if descending else "birthdate"
        expected = by_birth(town, every, descending)
        assert [p["id"] for p in search(town, f"Patient?_sort={sort}&_count=1000")] \
            == expected
        paged: list[str] = []
        for offset in range(0, len(expected), 7):
            paged += [p["id"] for p in search(
                town, f"Patient?_sort={sort}&_count=7&_offset={offset}")]
        assert paged == expected
    ranged = search(town, "Patient?birthdate=ge1945&birthdate=lt1955&_sort=-birthdate"
                          "&_count=1000")
    assert [p["id"] for p in ranged] == [i for i in by_birth(town, every, True)
                                         if i in brute_force(town, [("ge", "1945"),
                                                                    ("lt", "1955")])]


PREFIXES = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
DAYS = st.dates(min_value=date(1920, 1, 1), max_value=date(1965, 12, 31))


@st.composite
def bounds_of(draw: st.DrawFn) -> list[tuple[str, str]]:
    out = []
    for _ in range(draw(st.integers(1, 2))):
        day = draw(DAYS)
        value = draw(st.sampled_from([f"{day:%Y}", f"{day:%Y-%m}", day.isoformat(),
                                      f"{day.isoformat()}T16:00:00Z",
                                      f"{day.isoformat()}T00:00:00+08:00"]))
        out.append((draw(PREFIXES), value))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bounds=bounds_of())
def test_any_birth_date_range_gives_the_brute_force_answer(
        town: Town, bounds: list[tuple[str, str]]) -> None:
    query = "&".join(f"birthdate={p}{v.replace('+', '%2B')}" for p, v in bounds)
    found = {p["id"] for p in search(town, f"Patient?{query}&_count=1000")}
    assert found == brute_force(town, bounds)


# -- the comparison on spans, for every date and span -----------------------------------------


INSTANTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2030, 1, 1),
                        timezones=st.just(UTC))


@settings(max_examples=500, deadline=None)
@given(PREFIXES, INSTANTS, st.integers(1, 10**15), INSTANTS, st.integers(1, 10**16))
def test_a_span_decides_only_what_every_date_in_it_would(prefix: str, start: datetime,
                                                          length: int, asked: datetime,
                                                          width: int) -> None:
    """SQL keeps a span that could match (so no match is lost) and settles one that must
    (so what it settles is right); only the rest is opened and compared exactly."""
    exact = (start, start + timedelta(microseconds=length))
    value = DateValue(prefix, asked, asked + timedelta(microseconds=width))
    low, high = coarse_span(*exact, UTC)
    assert low <= exact[0] and exact[1] <= high
    matches = _date_admits(value, *exact)
    could = span_could_match(value, low, high, lambda a, b: a and b, lambda a, b: a or b)
    must = span_must_match(value, low, high, lambda a, b: a and b, lambda a, b: a or b)
    assert could or not matches
    assert matches or not must


FHIR_DATES = st.one_of(
    DAYS.map(lambda d: f"{d:%Y}"), DAYS.map(lambda d: f"{d:%Y-%m}"), DAYS.map(str),
    st.tuples(DAYS, st.integers(0, 23), st.integers(0, 59), st.sampled_from(
        ["Z", "+08:00", "-05:00"])).map(lambda t: f"{t[0]}T{t[1]:02d}:{t[2]:02d}:00{t[3]}"))


@settings(max_examples=500, deadline=None)
@given(FHIR_DATES, FHIR_DATES)
def test_a_date_eq_a_whole_day_month_or_year_is_found_by_its_term(stored: str,
                                                                   asked: str) -> None:
    """The blind terms of a person-level date answer ``eq`` a calendar unit exactly as
    comparing the ranges would; a value that is no whole unit is left to the spans."""
    zone = ZoneInfo("Asia/Shanghai")
    span, unit = parse_range(stored, zone), parse_range(asked, zone)
    term = calendar_term(*unit, zone)
    if len(asked) <= 10:
        assert term is not None
    if term is not None:
        assert (term in calendar_terms(*span, zone)) == \
            _date_admits(DateValue("eq", *unit, zone), *span)


# -- an index of an earlier form ---------------------------------------------------------------


def test_exchange_reindex_rebuilds_an_index_of_an_earlier_form(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    query = "/fhir/Observation?code=15074-8"
    assert community.http.get(query, headers=community.headers("clinic-a")).json()["total"] \
        == 3
    community.services.engine.dispose()
    with sqlite3.connect(tmp_path / "exchange.db") as conn:  # no mark, no term of this form
        conn.execute("DELETE FROM index_form")
        conn.execute("DELETE FROM term_index")
    services = build_services(community.services.settings, clock=community.clock)
    try:
        assert not services.repository.index.current
        result = CliRunner().invoke(app, ["reindex", "--data", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "Rebuilt the search indexes of" in result.output
        assert services.repository.index.current  # read again: another process rebuilt it
    finally:
        services.engine.dispose()
    assert community.http.get(query, headers=community.headers("clinic-a")).json()["total"] \
        == 3


def test_a_search_of_an_index_of_an_earlier_form_answers_503(tmp_path: Path) -> None:
    community = build_community(tmp_path)
    headers = community.headers("clinic-a")
    community.services.engine.dispose()
    with sqlite3.connect(tmp_path / "exchange.db") as conn:
        conn.execute("DELETE FROM index_form")
    services = build_services(community.services.settings, clock=community.clock)
    http = TestClient(create_app(services=services), raise_server_exceptions=False)
    try:
        r = http.get("/fhir/Patient?name=王", headers=headers)
        assert r.status_code == 503
        assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "index-outdated"
        assert "王" not in r.text
        # reads by id go on
        assert http.get("/fhir/Patient/alice", headers=headers).status_code == 200
        services.repository.rebuild_indexes()
        assert http.get("/fhir/Patient?name=王", headers=headers).json()["total"] == 1
    finally:
        services.engine.dispose()
        community.services.engine.dispose()


# -- on PostgreSQL ------------------------------------------------------------------------------


def test_the_same_answers_on_postgresql(tmp_path: Path, postgres_server: str) -> None:
    from tests.postgres import new_database

    community = build_community(tmp_path, database_url=new_database(postgres_server))
    try:
        births = populate(community, 24, 8, seed=16)
        town = Town(community, community.headers("clinic-a"),
                    {f"r{i:03d}" for i in range(8)}, births)
        for bounds in ([("eq", "1945-01-01")], [("ge", "1944-12-31"), ("lt", "1950-01-01")],
                       [("ne", "1949")]):
            query = "&".join(f"birthdate={p}{v}" for p, v in bounds)
            assert {p["id"] for p in search(town, f"Patient?{query}&_count=1000")} \
                == brute_force(town, bounds)
        every = search(town, "Patient?_count=1000")
        paged: list[str] = []
        for offset in range(0, len(every), 5):
            paged += [p["id"] for p in search(
                town, f"Patient?_sort=-birthdate&_count=5&_offset={offset}")]
        assert paged == by_birth(town, every, True)
        assert {c["id"] for c in search(town, f"Condition?code={SENSITIVE}&_count=1000")} \
            == sensitive_by_brute_force(town) == {f"r{i:03d}-dep" for i in range(8)
                                                  if i % 4 != 3}
    finally:
        community.services.engine.dispose()
