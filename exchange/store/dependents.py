"""Which records carry labels, and which records point at given ones: what a write asks
to settle the labels that reach a record from the records it points at
(``exchange.gate.labelling``). Both read the index rows of current versions only, on the
operation's transaction once it has written, so that they see what it wrote."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.store.indexing import SECURITY
from exchange.store.resources import F, R, T
from exchange.store.units import reading

_BATCH = 500  # records named in one statement


def labelled(engine: Engine, records: Collection[str]) -> set[str]:
    """Of these records (``Type/id``), those whose current version carries any security
    label: only they need be opened to read which."""
    by_type: dict[str, list[str]] = {}
    for ref in sorted(set(records)):
        rtype, _, rid = ref.partition("/")
        by_type.setdefault(rtype, []).append(rid)
    found: set[str] = set()
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), _BATCH):
            stmt = select(T.resource_id).where(
                T.resource_type == rtype, T.param == SECURITY,
                T.resource_id.in_(ids[start:start + _BATCH])).distinct()
            found.update(f"{rtype}/{rid}" for (rid,) in _rows(engine, stmt))
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


def _rows(engine: Engine, stmt: Any) -> list[tuple[str, ...]]:
    try:
        with reading(engine) as conn:
            return [tuple(row) for row in conn.execute(stmt)]
    except SQLAlchemyError:
        raise DependencyUnavailable("The record store is unavailable.") from None
