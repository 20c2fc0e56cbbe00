"""Moving an older exchange's data keys out of its database and into the key store.

Before the key store, each owner's wrapped data key was a row of the database's
``data_key`` table (owner, key_id, wrapped), so every database backup carried them.
When the vault opens a database that still has that table, the rows are handed to the
key provider (which keeps those it can open and that were not erased), the table is
emptied and dropped with SQLite's ``secure_delete`` on (the freed pages are zeroed) and
the write-ahead log is folded in and truncated, so the live database keeps no key
material. The provider then retires every key-encryption key that wrapped such rows
(``settle_adoption``): backups taken before the move stay ciphertext only.

Idempotent and safe to interrupt: keys already in the store are kept, the table is
dropped only after the store committed them, and the KEKs are retired only after the
table is gone. Several processes opening one old data directory at once each do what is
left. On PostgreSQL the table is dropped the same way; what its own write-ahead log
still holds of it until recycled is PostgreSQL's to discard.
"""

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import KeyUnavailable

LEGACY_TABLE = "data_key"
BATCH = 5_000


@runtime_checkable
class AdoptsDatabaseKeys(Protocol):
    """A key provider that can take in data keys an older exchange kept in its database
    (the embedded key file; a KMS adapter starts with none there)."""

    @property
    def adoption_pending(self) -> bool: ...

    def adopt_data_keys(self, wrapped: list[tuple[bytes, str, bytes]]) -> int: ...

    def settle_adoption(self, seen: set[str]) -> list[str]: ...


@dataclass(frozen=True)
class Adoption:
    found: int  # rows the database's table held
    moved: int  # of them, keys the store now holds
    retired: list[str]  # KEKs retired so that old backups' wrapped keys open no longer


def adopt_database_keys(engine: Engine, provider: object) -> Adoption | None:
    """Move the database's data keys (if it still has them) into ``provider``; None when
    there was nothing to do."""
    rows = _legacy_rows(engine)
    if not isinstance(provider, AdoptsDatabaseKeys):
        if rows is None:
            return None
        raise KeyUnavailable("The database holds data keys this key provider cannot take "
                             "in; move them with the embedded key file first.")
    if rows is None:
        if provider.adoption_pending:
            return Adoption(0, 0, provider.settle_adoption(set()))
        return None
    moved = 0
    seen: set[str] = set()
    for start in range(0, len(rows), BATCH):
        batch = [(b"data-key/" + str(owner).encode(), str(key_id), bytes(wrapped))
                 for owner, key_id, wrapped in rows[start:start + BATCH]]
        seen.update(key_id for _, key_id, _ in batch)
        moved += provider.adopt_data_keys(batch)
    try:
        _drop(engine)
    except SQLAlchemyError:
        if _legacy_rows(engine) is not None:  # not another process's drop a moment ago
            raise KeyUnavailable("The database's data keys could not be removed.") from None
    return Adoption(len(rows), moved, provider.settle_adoption(seen))


def _legacy_rows(engine: Engine) -> list[tuple[Any, ...]] | None:
    """The table's rows, or None if there is no such table (any more: another process
    may have moved them a moment ago)."""
    try:
        if not inspect(engine).has_table(LEGACY_TABLE):
            return None
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                f"SELECT owner, key_id, wrapped FROM {LEGACY_TABLE} ORDER BY owner"))]  # noqa: S608
    except SQLAlchemyError:
        try:
            if not inspect(engine).has_table(LEGACY_TABLE):
                return None
        except SQLAlchemyError:
            pass
        raise KeyUnavailable("The database could not be read for its data keys.") from None


def _drop(engine: Engine) -> None:
    """Empty and drop the table; on SQLite with the freed pages zeroed and the WAL folded
    in and truncated, so that neither file keeps a wrapped key."""
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA secure_delete=ON")
        try:
            if inspect(conn).has_table(LEGACY_TABLE):
                conn.execute(text(f"DELETE FROM {LEGACY_TABLE}"))  # noqa: S608
                conn.execute(text(f"DROP TABLE IF EXISTS {LEGACY_TABLE}"))
            conn.commit()
        finally:
            if sqlite:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA secure_delete=OFF")
    if sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
