"""Event dates at rest (#15.6): a copy of the database file, read without any key, holds
no date finer than its calendar month (a reading's time, a visit's day); searches by date
and sorts by it still give exactly the answer FHIR's comparison of the exact dates gives.

The attacker has the SQLite file alone. The brute force is the same caller's unfiltered
search, filtered in the test by FHIR's rules on the exact dates it is shown."""

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.fhir.dates import FAR_FUTURE, FAR_PAST, parse_range
from exchange.fhir.search import DateValue
from exchange.store.coarse_dates import span_could_match, span_must_match
from exchange.store.indexing import calendar_terms, day_term, month_span
from exchange.store.search_sql import _date_admits
from tests.community import Community, build_community, observation

HANGZHOU = ZoneInfo("Asia/Shanghai")
READINGS = 60


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Community, dict[str, str], list[str]]]:
    """alice's readings at random instants over four months, month and day edges among
    them (midnight in Hangzhou is 16:00 UTC the day before), a few with dates only."""
    community = build_community(tmp_path_factory.mktemp("events"))
    rng = random.Random(156)
    whens = ["2024-03-01T00:00:00+08:00", "2024-02-29T23:59:59+08:00",
             "2024-03-31T16:00:00Z", "2024-04-30T15:59:59Z", "2024-04", "2024-05-15",
             "2024-03-10T12:00:00+08:00", "2024-03-10T12:00:00+08:00"]
    start = datetime(2024, 2, 1, tzinfo=HANGZHOU)
    while len(whens) < READINGS:
        moment = start + timedelta(seconds=rng.randrange(120 * 86400))
        whens.append(moment.isoformat())
    records = [observation(f"alice-hr-{i}", "alice", "8867-4", when, 60 + i, "/min")
               for i, when in enumerate(whens)]
    community.services.repository.ingest(records)
    headers = community.headers("clinic-a")
    yield community, headers, whens
    community.services.engine.dispose()


def _search(community: Community, headers: dict[str, str],
            query: str) -> list[dict[str, Any]]:
    r = community.http.get(f"/fhir/Observation?patient=alice&code=8867-4&_count=500&{query}",
                           headers=headers)
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def test_no_event_date_finer_than_its_month_is_in_the_file(
        clinic: tuple[Community, dict[str, str], list[str]]) -> None:
    community, _, whens = clinic
    community.raw_db()  # folds the WAL into the file
    path = community.services.settings.data_dir / "exchange.db"
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = conn.execute("SELECT resource_type, param, low, high FROM date_index").fetchall()
    assert rows
    for rtype, param, low, high in rows:
        if (rtype, param) in {("Patient", "birthdate"), ("Patient", "death-date")}:
            continue
        for moment in (low, high):
            instant = datetime.fromisoformat(moment).replace(tzinfo=UTC)
            if instant in (FAR_PAST, FAR_FUTURE):
                continue
            local = instant.astimezone(HANGZHOU)
            assert (local.day, local.hour, local.minute, local.second) == (1, 0, 0, 0), \
                (rtype, param, moment)
    # nor as text anywhere: the readings' instants are in the encrypted records alone
    texts = " ".join(str(v) for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")
        for row in conn.execute(f'SELECT * FROM "{table}"') for v in row
        if isinstance(v, str))
    for when in whens:
        exact = parse_range(when, HANGZHOU)[0]
        local = exact.astimezone(HANGZHOU)
        if (local.day, local.hour, local.minute, local.second) == (1, 0, 0, 0):
            continue  # a month's first instant is its span's edge, and says no more
        assert when not in texts
        assert f"{exact.astimezone(UTC):%Y-%m-%d %H:%M:%S}" not in texts, when
    conn.close()


def _admits(prefix: str, stored: str, asked: str) -> bool:
    return _date_admits(DateValue(prefix, *parse_range(asked, HANGZHOU), HANGZHOU),
                        *parse_range(stored, HANGZHOU))


PREFIXES = st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"])
DAYS = st.dates(min_value=datetime(2024, 1, 25).date(), max_value=datetime(2024, 6, 5).date())
VALUES = st.one_of(
    DAYS.map(lambda d: f"{d:%Y-%m}"), DAYS.map(str),
    st.tuples(DAYS, st.integers(0, 23), st.integers(0, 59), st.sampled_from(
        ["Z", "+08:00"])).map(lambda t: f"{t[0]}T{t[1]:02d}:{t[2]:02d}:00{t[3]}"))


@settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(bounds=st.lists(st.tuples(PREFIXES, VALUES), min_size=1, max_size=2))
def test_any_date_range_gives_the_exact_answer(
        clinic: tuple[Community, dict[str, str], list[str]],
        bounds: list[tuple[str, str]]) -> None:
    community, headers, _ = clinic
    every = _search(community, headers, "")
    assert len(every) == READINGS
    expected = {o["id"] for o in every
                if all(_admits(p, o["effectiveDateTime"], v) for p, v in bounds)}
    query = "&".join(f"date={p}{quote(v)}" for p, v in bounds)
    assert {o["id"] for o in _search(community, headers, query)} == expected


def test_sorted_by_date_in_pages_is_the_exact_order(
        clinic: tuple[Community, dict[str, str], list[str]]) -> None:
    community, headers, _ = clinic
    every = _search(community, headers, "")
    for descending in (False, True):
        def key(o: dict[str, Any]) -> datetime:
            return parse_range(o["effectiveDateTime"], HANGZHOU)[0]
        expected = [key(o) for o in sorted(every, key=key, reverse=descending)]
        sort = "-date" if descending else "date"
        paged: list[dict[str, Any]] = []
        for offset in range(0, READINGS, 7):
            paged += _search(community, headers, f"_sort={sort}&_count=7&_offset={offset}")
        assert [key(o) for o in paged] == expected
        assert len({o["id"] for o in paged}) == READINGS


INSTANTS = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1),
                        timezones=st.just(UTC))


@settings(max_examples=500, deadline=None)
@given(PREFIXES, INSTANTS, st.integers(1, 10**14), INSTANTS, st.integers(1, 10**14))
def test_a_month_span_holds_its_date_and_decides_only_what_it_must(
        prefix: str, start: datetime, length: int, asked: datetime, width: int) -> None:
    exact = (start, start + timedelta(microseconds=length))
    value = DateValue(prefix, asked, asked + timedelta(microseconds=width))
    low, high = month_span(*exact, HANGZHOU)
    assert low <= exact[0] and exact[1] <= high
    # a month's first instant: local midnight, or 01:00 where summer time began at
    # midnight (China kept it in 1940-49 and 1986-91)
    assert low.astimezone(HANGZHOU).day == 1 and low.astimezone(HANGZHOU).hour <= 1 \
        and (low - timedelta(microseconds=1)).astimezone(HANGZHOU).day != 1
    matches = _date_admits(value, *exact)
    could = span_could_match(value, low, high, lambda a, b: a and b, lambda a, b: a or b)
    must = span_must_match(value, low, high, lambda a, b: a and b, lambda a, b: a or b)
    assert could or not matches
    assert matches or not must


def test_open_and_far_periods_keep_their_open_ends() -> None:
    assert month_span(FAR_PAST, FAR_FUTURE, HANGZHOU) == (FAR_PAST, FAR_FUTURE)
    low, high = month_span(datetime(2024, 3, 5, tzinfo=UTC), FAR_FUTURE, HANGZHOU)
    assert high == FAR_FUTURE and low == datetime(2024, 3, 1, tzinfo=HANGZHOU)
    assert month_span(FAR_PAST, datetime(2024, 3, 5, tzinfo=UTC), HANGZHOU)[0] == FAR_PAST


@settings(max_examples=500, deadline=None)
@given(INSTANTS, st.integers(1, 10**12))
def test_an_event_dates_day_term_is_the_calendars(start: datetime, length: int) -> None:
    """The one term an event date is indexed with is the day ``calendar_terms`` names, so
    ``date=eq`` a day finds it exactly as a birth date's day is found."""
    span = (start, start + timedelta(microseconds=length))
    days = [t for t in calendar_terms(*span, HANGZHOU) if t.startswith("d")]
    assert day_term(*span, HANGZHOU) == (days[0] if days else None)
