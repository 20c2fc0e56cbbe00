"""A resident's compartment: the current records that are theirs, their consents, and a
stamp that changes whenever any of those consents changes."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.store.resources import RESOURCES, R, ResourceVersions, StoredResource
from exchange.store.units import reading


class Compartments:
    def __init__(self, engine: Engine, versions: ResourceVersions) -> None:
        self._engine = engine
        self._versions = versions

    def compartment(self, patient_id: str, types: Iterable[str],
                    limit: int = 10_000) -> list[StoredResource]:
        types = list(types)
        stmt = select(RESOURCES).where(
            R.patient_id == patient_id, R.is_current, ~R.deleted,
            R.resource_type.in_(types)).order_by(R.resource_type, R.last_updated,
                                                 R.resource_id).limit(limit)
        return self._versions.fetch(stmt)

    def consents_of(self, patient_id: str) -> list[StoredResource]:
        return self.compartment(patient_id, ["Consent"])

    def consent_stamp(self, patient_id: str) -> str:
        """Changes whenever any of the resident's consents changes (any worker, any process)."""
        return self.consent_stamps([patient_id])[patient_id]

    def consent_stamps(self, patient_ids: Sequence[str]) -> dict[str, str]:
        """``consent_stamp`` for many residents in one query per 500 (a search's residents)."""
        stamps = {pid: _stamp(0, None, None) for pid in patient_ids}
        ids = list(stamps)
        try:
            with reading(self._engine) as conn:
                for start in range(0, len(ids), 500):
                    stmt = select(R.patient_id, func.count(), func.max(R.last_updated),
                                  func.sum(R.version_id)).where(
                        R.resource_type == "Consent",
                        R.patient_id.in_(ids[start:start + 500])).group_by(R.patient_id)
                    for pid, count, latest, versions in conn.execute(stmt):
                        stamps[pid] = _stamp(count, latest, versions)
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return stamps


def _stamp(count: int, latest: Any, versions: Any) -> str:
    return f"{count}:{latest}:{versions}"
