"""Rebuilding the search indexes from the records themselves: after an upgrade that changes
what the index holds (``indexing.INDEX_FORM``), every current version is opened and
indexed again as a write would index it now, and the store is marked as in that form.

Run with the exchange stopped (``exchange reindex``): each batch is one transaction that
reads its records under the write lock (SQLite) or a row lock (PostgreSQL), so a write
that lands between batches is indexed by itself in the present form, but searches are
refused until the last batch has marked the store (``index_form``).
"""

from collections.abc import Callable

from sqlalchemy import delete, select

from exchange.store.resources import INDEX_TABLES, RESOURCES, R, ResourceVersions
from exchange.store.units import scope, writing

BATCH = 2000  # records opened and indexed in one transaction (a third faster than 500)


def rebuild_indexes(versions: ResourceVersions,
                    progress: Callable[[int, int], None] | None = None) -> int:
    """Index every current, live record again; returns how many. The indexes of records
    deleted or superseded hold nothing already (a write removes them)."""
    with versions.engine.connect() as conn:
        keys = [(t, i) for t, i in conn.execute(
            select(R.resource_type, R.resource_id).where(R.is_current, ~R.deleted)
            .order_by(R.resource_type, R.resource_id))]
    done = 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        by_type: dict[str, list[str]] = {}
        for rtype, rid in batch:
            by_type.setdefault(rtype, []).append(rid)
        with scope(versions.engine), writing(versions.engine) as conn:
            for rtype, ids in by_type.items():
                rows = versions.fetch(select(RESOURCES).where(
                    R.resource_type == rtype, R.resource_id.in_(ids), R.is_current,
                    ~R.deleted).with_for_update())
                for table in INDEX_TABLES:
                    conn.execute(delete(table).where(table.c.resource_type == rtype,
                                                     table.c.resource_id.in_(ids)))
                versions.index_rows(rows).insert(conn)
        done += len(batch)
        if progress is not None:
            progress(done, len(keys))
    with scope(versions.engine), writing(versions.engine) as conn:
        versions.index.mark(conn)
    return done
