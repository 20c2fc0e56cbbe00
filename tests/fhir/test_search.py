"""Property tests for the search parser and FHIR date ranges."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.errors import InvalidSearch
from exchange.fhir.dates import parse_range
from exchange.fhir.search import DateValue, StringValue, TokenValue, parse_search
from exchange.fhir.search_params import PARAMS

names = st.sampled_from(sorted({n for p in PARAMS.values() for n in p} |
                               {"_id", "_count", "_sort", "_include", "_revinclude",
                                "_summary", "_elements", "_lastUpdated", "_offset",
                                "bogus", "patient.name", "subject:Patient.gender"}))
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.sampled_from(sorted(PARAMS)),
       st.lists(st.tuples(st.one_of(names, text), text), max_size=6))
def test_parser_accepts_or_refuses_cleanly(rtype: str, pairs: list[tuple[str, str]]) -> None:
    """Whatever arrives, the parser answers a query or an InvalidSearch: nothing else."""
    try:
        query = parse_search(rtype, pairs)
    except InvalidSearch as exc:
        assert exc.status == 400 and exc.message
        return
    assert query.resource_type == rtype
    assert 0 <= query.count <= 500


safe = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.:/", min_size=1, max_size=15)


@given(safe.filter(lambda s: "|" not in s), safe.filter(lambda s: "|" not in s))
def test_token_forms(system: str, code: str) -> None:
    (clause,) = parse_search("Observation", [("code", f"{system}|{code}")]).clauses
    assert clause.values == (TokenValue(system, code),)
    (clause,) = parse_search("Observation", [("code", code)]).clauses
    assert clause.values == (TokenValue(None, code),)
    (clause,) = parse_search("Observation", [("code", f"|{code}")]).clauses
    assert clause.values == (TokenValue("", code),)


@given(st.lists(safe.filter(lambda s: "," not in s), min_size=1, max_size=5))
def test_comma_means_or_and_escaped_comma_does_not(values: list[str]) -> None:
    (clause,) = parse_search("Patient", [("name", ",".join(values))]).clauses
    assert clause.values == tuple(StringValue(v, False) for v in values)
    (clause,) = parse_search("Patient", [("name", "\\,".join(values))]).clauses
    assert clause.values == (StringValue(",".join(values), False),)


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9998, 12, 31)),
       st.sampled_from(["", "eq", "ne", "lt", "le", "gt", "ge"]))
def test_date_prefixes_and_ranges(day: date, prefix: str) -> None:
    value = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    (clause,) = parse_search("Observation", [("date", prefix + value)]).clauses
    (parsed,) = clause.values
    assert isinstance(parsed, DateValue)
    assert parsed.prefix == (prefix or "eq")
    assert parsed.high - parsed.low == timedelta(days=1)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
       st.integers(-12, 14))
def test_datetime_with_offset_covers_its_instant(moment: datetime, hours: int) -> None:
    from datetime import timezone

    aware = moment.replace(microsecond=0, tzinfo=timezone(timedelta(hours=hours)))
    low, high = parse_range(aware.isoformat())
    assert low == aware.astimezone(UTC)
    assert high - low == timedelta(seconds=1)


@given(st.integers(1, 9998), st.integers(1, 12))
def test_partial_dates_nest(year: int, month: int) -> None:
    y_low, y_high = parse_range(f"{year:04d}")
    m_low, m_high = parse_range(f"{year:04d}-{month:02d}")
    assert y_low <= m_low < m_high <= y_high


@pytest.mark.parametrize("bad", ["2023-02-30", "2023-13", "20231", "2023-01-01T25:00Z",
                                 "2023-01-01T10:00+15:00", "yesterday", "", "0000"])
def test_malformed_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_range(bad)
