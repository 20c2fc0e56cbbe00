"""Which form a store's search indexes are in, and the check that keeps a store indexed in
an earlier form from being searched.

A search of indexes in another form would not fail, it would miss: terms keyed for the
community find nothing under residents' keys. So a store that holds records but no mark
of the present form (``indexing.INDEX_FORM``) answers every search with ``IndexOutdated``
(503) until ``exchange reindex`` rebuilds it; reads by id and writes go on meanwhile (a
write indexes in the present form, which the rebuild redoes). A store with no record yet
is marked at once: nothing in it was indexed in any other form.
"""

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from exchange.errors import IndexOutdated
from exchange.store.indexing import INDEX_FORM
from exchange.store.tables import IndexFormRow, ResourceRow
from exchange.store.units import reading, writing

FORMS = IndexFormRow.__table__  # type: ignore[attr-defined]
RESOURCES = ResourceRow.__table__  # type: ignore[attr-defined]


class IndexForm:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._current = self._settle()

    @property
    def current(self) -> bool:
        """Whether the indexes are in the present form (read again while they are not:
        another process may have rebuilt them)."""
        if not self._current:
            self._current = self._settle()
        return self._current

    def require(self) -> None:
        """Refuse a search of indexes in an earlier form."""
        if not self.current:
            raise IndexOutdated()

    def mark(self, conn: Connection) -> None:
        """Record, on the rebuild's transaction, that the indexes are in the present form."""
        conn.execute(delete(FORMS))
        conn.execute(insert(FORMS), {"form": INDEX_FORM})
        self._current = True

    def _stored(self) -> int | None:
        try:
            with reading(self._engine) as conn:
                return conn.execute(select(FORMS.c.form)).scalar()
        except SQLAlchemyError:
            return None

    def _settle(self) -> bool:
        stored = self._stored()
        if stored is not None:
            return stored == INDEX_FORM
        try:
            with reading(self._engine) as conn:
                held = conn.execute(select(RESOURCES.c.resource_id).limit(1)).first()
        except SQLAlchemyError:
            return False  # unreadable now: asked again at the first search
        if held is not None:
            return False  # records indexed before forms were marked: the first form
        try:
            with writing(self._engine) as conn:
                conn.execute(insert(FORMS), {"form": INDEX_FORM})
        except IntegrityError:
            return self._stored() == INDEX_FORM  # another process marked it first
        except SQLAlchemyError:
            pass  # read-only: it holds nothing, so there is nothing to miss
        return True
