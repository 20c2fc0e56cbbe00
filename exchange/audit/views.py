"""What the compliance views read from the audit log: filtered pages, counts, activity.

Queries narrow their scan with the filter columns stored beside each entry (see
``exchange.audit.appending.filter_columns``); a page's entries are decrypted and checked
against the filters again. Counts and activity read the filter columns only.
"""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from exchange.audit.appending import filter_columns, open_entry
from exchange.privacy.envelope import Vault
from exchange.store.repository import as_utc
from exchange.store.tables import AuditRow

log = logging.getLogger("exchange.audit")

A = AuditRow.__table__.c  # type: ignore[attr-defined]


class AuditViews:
    def __init__(self, engine: Engine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault

    def query(self, *, resident: str | None = None, organization: str | None = None,
              purpose: str | None = None, outcomes: Sequence[str] | None = None,
              since: datetime | None = None, until: datetime | None = None,
              offset: int = 0, limit: int = 50) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        """Entries matching the filters, newest first: (total, page of (seq, entry)).

        The filter columns narrow the scan; each entry found is decrypted and checked
        again, so a doctored column can hide nothing it does not also break in the tree.
        """
        where: list[Any] = []
        if resident is not None:
            where.append(A.resident == resident)
        if organization is not None:
            where.append(A.organization == organization)
        if purpose is not None:
            where.append(A.purpose == purpose)
        if outcomes:
            where.append(A.outcome.in_(list(outcomes)))
        if since is not None:
            where.append(A.recorded_at >= since)
        if until is not None:
            where.append(A.recorded_at < until)
        with self._engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(AuditRow.__table__)  # type: ignore[attr-defined]
                                     .where(*where)).scalar_one())
            rows = list(conn.execute(select(A.seq, A.content).where(*where)
                                     .order_by(A.seq.desc()).offset(offset).limit(limit)))
        page = []
        for seq, content in rows:
            entry = open_entry(self._vault, seq, content)
            found = filter_columns(entry)
            if (resident is not None and found["resident"] != resident) or \
                    (organization is not None and found["organization"] != organization) or \
                    (purpose is not None and found["purpose"] != purpose) or \
                    (outcomes and found["outcome"] not in outcomes):
                log.error("audit filter columns disagree with entry %d", seq)
                continue
            page.append((seq, entry))
        return total, page

    def counts(self, since: datetime | None = None) -> list[tuple[Any, ...]]:
        """(day, organization, purpose, outcome, action, count) over the filter columns."""
        day = func.date(A.recorded_at)
        stmt = select(day, A.organization, A.purpose, A.outcome, A.action, func.count())
        if since is not None:
            stmt = stmt.where(A.recorded_at >= since)
        stmt = stmt.group_by(day, A.organization, A.purpose, A.outcome, A.action)
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]

    def activity(self, since: datetime) -> list[tuple[int, datetime, str | None, str | None,
                                                     str | None]]:
        """(seq, time, organization, purpose, outcome) of entries since a moment."""
        stmt = select(A.seq, A.recorded_at, A.organization, A.purpose, A.outcome).where(
            A.recorded_at >= since).order_by(A.seq)
        with self._engine.connect() as conn:
            return [(r[0], as_utc(r[1]), r[2], r[3], r[4]) for r in conn.execute(stmt)]
