"""The store's side of differentially private releases: the day's answers and spending
(``NoisyReleaseRow``)."""

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable
from exchange.store.tables import NoisyReleaseRow
from exchange.store.units import reading, writing

N = NoisyReleaseRow.__table__.c  # type: ignore[attr-defined]


class NoisyReleases:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def earlier(self, recipient: str, day: str, query: str) -> bytes | None:
        """What this recipient was told for this query today, if it asked before."""
        try:
            with reading(self._engine) as conn:
                row = conn.execute(select(N.answer).where(
                    N.recipient == recipient, N.day == day, N.query == query)).first()
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return None if row is None else bytes(row[0])

    def spent(self, recipient: str, day: str) -> float:
        try:
            with reading(self._engine) as conn:
                total = conn.execute(select(func.sum(N.epsilon)).where(
                    N.recipient == recipient, N.day == day)).scalar()
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return float(total or 0.0)

    def record(self, recipient: str, day: str, query: str, epsilon: float,
               answer: bytes) -> None:
        """Within the operation's unit: commits with the release's audit entry."""
        with writing(self._engine) as conn:
            conn.execute(insert(NoisyReleaseRow).values(
                recipient=recipient, day=day, query=query, epsilon=epsilon, answer=answer))
