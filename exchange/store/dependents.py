"""Which records carry labels, and which records point at given ones: what a write asks
to settle the labels that reach a record from the records it points at
(``exchange.gate.labelling``), and a search by ``_security:missing``. They read the index
rows of current versions only, on the operation's transaction once it has written, so
that they see what it wrote.

Every record holds as many ``_security`` rows as any other (``indexing.SECURITY_ROWS``),
so whether a record is labelled is not a row's presence: a record with no label holds its
own marker (``indexing.unlabelled_marker``), keyed by its resident and by the record, and
asked record by record."""

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.privacy.blind_index import BlindIndex
from exchange.store.indexing import SECURITY, unlabelled_marker
from exchange.store.resources import F, R, T
from exchange.store.units import reading

_BATCH = 500  # records named in one statement


def labelled(engine: Engine, blind: BlindIndex, records: Collection[str]) -> set[str]:
    """Of these records (``Type/id``), those whose current version carries any security
    label: only they need be opened to read which."""
    by_type: dict[str, list[str]] = {}
    for ref in sorted(set(records)):
        rtype, _, rid = ref.partition("/")
        by_type.setdefault(rtype, []).append(rid)
    found: set[str] = set()
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), _BATCH):
            current = _current(engine, rtype, R.resource_id.in_(ids[start:start + _BATCH]))
            bare = _unlabelled(engine, blind, rtype, current)
            found.update(f"{rtype}/{rid}" for rid, _ in current if rid not in bare)
    return found


def unlabelled_among(engine: Engine, blind: BlindIndex, rtype: str,
                     whose: ColumnElement[bool]) -> list[str]:
    """The ids of the current records of ``rtype`` that ``whose`` selects (a condition on
    the resource table: their residents) and that carry no security label."""
    current = _current(engine, rtype, whose)
    return sorted(_unlabelled(engine, blind, rtype, current))


def _current(engine: Engine, rtype: str,
             which: ColumnElement[bool]) -> list[tuple[str, str | None]]:
    """(id, resident) of the current, live records of ``rtype`` that ``which`` selects."""
    stmt = select(R.resource_id, R.patient_id).where(R.resource_type == rtype, R.is_current,
                                                     ~R.deleted, which)
    return [(str(rid), owner) for rid, owner in _rows(engine, stmt)]


def _unlabelled(engine: Engine, blind: BlindIndex, rtype: str,
                records: Sequence[tuple[str, str | None]]) -> set[str]:
    """Of these records of ``rtype`` (id, resident), those holding their own marker."""
    found: set[str] = set()
    for start in range(0, len(records), _BATCH):
        markers = [unlabelled_marker(blind, owner, f"{rtype}/{rid}")
                   for rid, owner in records[start:start + _BATCH]]
        stmt = select(T.resource_id).where(T.resource_type == rtype, T.param == SECURITY,
                                           T.term.in_(markers))
        found.update(str(rid) for (rid,) in _rows(engine, stmt))
    return found


def pointing_at(engine: Engine, records: Collection[str],
                resident: str) -> list[tuple[str, str]]:
    """The current records of ``resident`` that point at any of ``records``, wherever the
    pointer sits (a search parameter's, or none's: ``indexing.REFERS``), each once."""
    targets = sorted(set(records))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(targets), _BATCH):
        stmt = select(F.resource_type, F.resource_id).where(
            F.target.in_(targets[start:start + _BATCH]),
            R.resource_type == F.resource_type, R.resource_id == F.resource_id,
            R.is_current, ~R.deleted, R.patient_id == resident).distinct()
        found.update((rtype, rid) for rtype, rid in _rows(engine, stmt))
    return sorted(found)


def _rows(engine: Engine, stmt: Any) -> list[tuple[Any, ...]]:
    try:
        with reading(engine) as conn:
            return [tuple(row) for row in conn.execute(stmt)]
    except SQLAlchemyError:
        raise DependencyUnavailable("The record store is unavailable.") from None
