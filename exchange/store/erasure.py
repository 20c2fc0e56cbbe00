"""Erasing a resident from the live store: every version of their records and every index
row that points at them, in one transaction. Destroying the data key is the caller's."""

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.store.resources import INDEX_TABLES, RESOURCES, R
from exchange.store.units import writing


class RecordEraser:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def erase(self, patient_id: str) -> tuple[int, int]:
        """Remove every version of a resident's records and their index entries, in one
        transaction; returns (resources, versions). The caller destroys the data key."""
        owned = select(R.resource_type, R.resource_id).where(
            R.patient_id == patient_id, R.is_current)
        try:
            with writing(self._engine) as conn:
                resources = int(conn.execute(
                    select(func.count()).select_from(owned.subquery())).scalar_one())
                for table in INDEX_TABLES:
                    conn.execute(delete(table).where(
                        tuple_(table.c.resource_type, table.c.resource_id).in_(owned)))
                versions = conn.execute(delete(RESOURCES).where(
                    R.patient_id == patient_id)).rowcount
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return resources, int(versions or 0)
