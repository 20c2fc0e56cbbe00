"""Searching by a person-level date the index keeps only as a span of years (a birth date,
a date of death: ``exchange.store.indexing``): which spans SQL can settle, and the exact
order of matches within a span, from their decrypted records.

A stored span [low, high) holds the exact range of the date somewhere inside it. For a
searched value, SQL keeps a span that *could* match (some range inside it would) and
settles one that *must* (every range inside it would); only the spans in between are
opened and compared exactly. Sorted by such a date, SQL orders by the span, which the
exact order only refines: a date's span follows the date.
"""

from collections.abc import Sequence
from datetime import tzinfo
from functools import partial
from typing import Any

import orjson
from sqlalchemy import and_, or_

from exchange.fhir.search import DateValue, SearchQuery
from exchange.fhir.search_params import PARAMS
from exchange.store.indexing import exact_spans
from exchange.store.resources import StoredResource


def span_could_match(value: DateValue, low: Any, high: Any, both: Any = and_,
                     either: Any = or_) -> Any:
    """Whether some date within the stored span [low, high) matches: FHIR's comparison
    (``search_sql._date_condition``) with the date's own bounds at their most favourable
    within the span. On columns an SQL condition; with ``both``/``either`` of plain
    booleans, on values."""
    if value.prefix == "eq":
        return both(low < value.high, high > value.low)
    if value.prefix == "ne":
        return either(low < value.low, high > value.high)
    if value.prefix == "gt":
        return high > value.high
    if value.prefix == "ge":
        return high > value.low
    if value.prefix == "lt":
        return low < value.low
    return low < value.high  # le


def span_must_match(value: DateValue, low: Any, high: Any, both: Any = and_,
                    either: Any = or_) -> Any:
    """Whether every date within the stored span [low, high) matches: with its bounds at
    their least favourable (a date as early as the span's start, or ending at its end)."""
    if value.prefix == "eq":
        return both(low >= value.low, high <= value.high)
    if value.prefix == "ne":
        return either(high <= value.low, low >= value.high)
    if value.prefix == "gt":
        return low >= value.high
    if value.prefix == "ge":
        return low >= value.low
    if value.prefix == "lt":
        return high <= value.low
    return high <= value.high  # le


def page_window(sizes: Sequence[int], start: int, stop: int) -> tuple[int, list[int]]:
    """Of matches in groups of ``sizes`` (one per span, in order), the groups that rows
    [start, stop) fall in: the position of the first group's first row, and their sizes."""
    window: list[int] = []
    first = seen = 0
    for size in sizes:
        if seen + size > start and seen < stop:
            if not window:
                first = seen
            window.append(size)
        seen += size
    return first, window


def exactly_sorted(rows: Sequence[StoredResource], query: SearchQuery, zone: tzinfo,
                   neutral_order: bool) -> list[StoredResource]:
    """``rows`` in the order the query asks, by the exact dates of the decrypted records,
    ties as SQL breaks them (by the last change, then id; by id alone when neutral)."""
    rtype = query.resource_type
    bodies = {row.resource_id: orjson.loads(row.body) for row in rows}

    def value(row: StoredResource, key: str) -> tuple[int, Any]:
        if key == "_id":
            return 1, row.resource_id
        if key == "_lastUpdated":
            return 1, row.last_updated
        lows = [low for k in PARAMS[rtype][key].index_keys
                for low, _ in exact_spans(bodies[row.resource_id], PARAMS[rtype][k], zone)]
        return (1, min(lows)) if lows else (0, None)  # none first, as SQLite orders NULL

    def tie(row: StoredResource) -> tuple[Any, ...]:
        return (row.resource_id,) if neutral_order else (row.last_updated, row.resource_id)

    out = sorted(rows, key=tie)
    for key, descending in reversed(query.sort):  # stable sorts: the last key first
        out.sort(key=partial(value, key=key), reverse=descending)
    return out
