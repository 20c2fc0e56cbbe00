"""Engine creation. SQLite gets WAL and synchronous=FULL (an acknowledged write survives),
and its files are the owner's alone (0600)."""

import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

from exchange.store import tables  # noqa: F401  (registers the tables on the metadata)


def driver_url(url: str) -> str:
    """The URL with the driver the project declares: ``postgresql://`` means psycopg 3
    (the ``postgres`` extra), where SQLAlchemy alone would look for psycopg2."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def private_file(url: str) -> None:
    """Make an SQLite database file readable by its owner alone (0600), before SQLite
    opens it: its WAL and shared-memory files take the database file's mode, and the
    default umask would leave all three readable by every local user (0644)."""
    parsed = make_url(url)
    path = parsed.database
    if not path or path == ":memory:" or parsed.query.get("mode") == "ro" \
            or path.startswith("file:"):
        return
    target = Path(path)
    if not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600))
    if stat.S_IMODE(target.stat().st_mode) & 0o077:
        target.chmod(0o600)


def make_engine(url: str) -> Engine:
    url = driver_url(url)
    if url.startswith("sqlite"):
        private_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    add_new_columns(engine)
    return engine


def add_new_columns(engine: Engine) -> None:
    """Add the nullable columns and the indexes a newer release declares to tables an
    older one created (``create_all`` makes missing tables only). Additive changes only,
    each a column that reads as NULL in every existing row, or an index; anything else
    needs a migration of its own."""
    existing = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        if not existing.has_table(table.name):
            continue
        indexes = {i["name"] for i in existing.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(engine)
        present = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable or column.primary_key:
                raise RuntimeError(f"The database's table {table.name} lacks the column "
                                   f"{column.name}, which cannot be added in place.")
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as conn:
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN '
                                  f'"{column.name}" {kind}'))
