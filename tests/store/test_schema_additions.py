"""A database an earlier release created gains the nullable columns and the indexes a
newer one declares when it is opened, its rows untouched (exchange/store/database.py)."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect

from exchange.store.database import make_engine


def test_an_older_database_gains_the_new_column_and_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_engine(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as conn:  # as the release before held records made it
        conn.execute("DROP INDEX ix_date_of_record")
        conn.execute("ALTER TABLE resource DROP COLUMN holder")
        conn.execute("INSERT INTO resource (resource_type, resource_id, version_id, "
                     "is_current, deleted, patient_id, last_updated, content) VALUES "
                     "('Observation', 'o1', 1, 1, 0, 'ann', '2024-01-01 00:00:00', x'00')")
    engine = make_engine(f"sqlite:///{path}")
    tables = inspect(engine)
    assert "holder" in {c["name"] for c in tables.get_columns("resource")}
    assert "ix_date_of_record" in {i["name"] for i in tables.get_indexes("date_index")}
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT patient_id, holder FROM resource WHERE resource_id = 'o1'").one()
    assert tuple(row) == ("ann", None)
    engine.dispose()


def test_a_missing_column_that_cannot_be_null_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_engine(f"sqlite:///{path}").dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE resource DROP COLUMN deleted")
    with pytest.raises(RuntimeError, match="cannot be added in place"):
        make_engine(f"sqlite:///{path}")
