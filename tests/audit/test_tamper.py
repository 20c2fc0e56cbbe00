"""Verify fails on any single-row change to any ledger table (#14.3).

A real ledger is made once through the HTTP API: clinic reads and writes, a consent, an
officer's integrity view (a checkpoint signed on demand), an officer's verification, an
export to a witness, and periodic checkpoints as the clock moves. Each example copies it,
edits, deletes or inserts one row of ``audit_entry``, ``audit_node``,
``audit_checkpoint`` or ``audit_verification`` the way someone with the database file
would, and verify must say TAMPERED, naming the table. Left out, with why: the surrogate
key ``audit_verification.row``, which no view reads (the last verification is the latest
by time, and time is bound).
"""

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.model import build_consent
from exchange.app import build_services
from exchange.config import Settings
from tests.community import Community, build_community, observation

TABLES = {
    "audit_entry": ("seq", ["seq", "recorded_at", "leaf", "content", "action", "outcome",
                            "resident", "organization", "purpose"]),
    "audit_node": ("level, \"index\"", ["level", "index", "hash"]),
    "audit_checkpoint": ("size", ["size", "root", "note", "created_at", "exported_at"]),
    "audit_verification": ("row", ["verified_at", "ok", "checked", "problem"]),
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("ledger")
    community = build_community(root / "data")
    make_traffic(community)
    ledger = community.services.ledger
    assert ledger.verify().ok
    community.services.engine.dispose()
    yield root / "data"


def make_traffic(community: Community) -> None:
    clinic = community.headers("clinic-a", scope="system/*.cruds")
    officer = community.headers("office", "HCOMPL", "system/AuditEvent.rs")
    for minute in range(4):
        community.http.get("/fhir/Patient/alice", headers=clinic)
        community.http.get("/fhir/Observation?subject=Patient/bob", headers=clinic)
        obs = observation("x", "alice", "8867-4", "2026-01-05T08:00:00+08:00", 70 + minute)
        del obs["id"]
        community.http.post("/fhir/Observation", json=obs, headers=clinic)
        community.clock.advance(minutes=2)  # a checkpoint is due at the next append
        if minute == 1:
            community.http.post("/fhir/Consent", json=build_consent(
                "carol", "Organization/clinic-a", ["TREAT"], when=community.clock.now()),
                headers=community.resident_headers("carol"))
            community.http.get("/compliance/integrity", headers=officer)
            community.http.post("/compliance/verify", headers=officer)
        if minute == 2:
            ledger = community.services.ledger
            ledger.mark_exported(ledger.checkpoint().checkpoint.size)
            ledger.record_verification(ledger.verify())


def copy_exchange(data: Path, to: Path) -> None:
    """The data and, apart from it, the keys (without which nothing decrypts)."""
    shutil.copytree(data, to)
    shutil.copytree(Settings(data_dir=data).keys_dir, Settings(data_dir=to).keys_dir)


def rows_of(conn: sqlite3.Connection, table: str) -> list[sqlite3.Row]:
    return list(conn.execute(f"SELECT rowid AS _rowid, * FROM {table}"))


def changed(value: Any, column: str) -> Any:
    """A different value of the column's kind."""
    if value is None:
        return "2026-01-01 00:00:00.000000" if column.endswith("_at") else "x"
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    if isinstance(value, int):
        return value + 1 if column != "ok" else 1 - value
    if column.endswith("_at"):
        return value[:17] + ("01" if value[17:19] != "01" else "02") + value[19:]
    if column == "hash" or column in ("leaf", "root"):
        return ("0" if value[0] != "0" else "1") + value[1:]
    return value + "x"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_row_change_fails_verify(template: Path, tmp_path_factory: Any,
                                            data: st.DataObject) -> None:
    copy = tmp_path_factory.mktemp("tampered") / "data"
    copy_exchange(template, copy)
    table = data.draw(st.sampled_from(sorted(TABLES)), label="table")
    _key, columns = TABLES[table]
    op = data.draw(st.sampled_from(["edit", "delete", "insert"]), label="op")
    conn = sqlite3.connect(copy / "exchange.db")
    conn.row_factory = sqlite3.Row
    with conn:
        rows = rows_of(conn, table)
        assert rows, table
        row = data.draw(st.sampled_from(rows), label="row")
        if op == "delete":
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (row["_rowid"],))
        elif op == "edit":
            column = data.draw(st.sampled_from(columns), label="column")
            if column == "exported_at" and row[column] is not None \
                    and data.draw(st.booleans(), label="to null"):
                new = None
            else:
                new = changed(row[column], column)
            try:
                conn.execute(f'UPDATE {table} SET "{column}" = ? WHERE rowid = ?',
                             (new, row["_rowid"]))
            except sqlite3.IntegrityError:  # a key taken: the edit moves onto another row
                conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (row["_rowid"],))
        else:
            values = {c: row[c] for c in row.keys()  # noqa: SIM118 (a Row iterates values)
                      if c not in ("_rowid", "row")}
            if table == "audit_entry":
                values["seq"] = max(r["seq"] for r in rows) + 1
            elif table == "audit_node":
                values["index"] = max(r["index"] for r in rows) + 7
            elif table == "audit_checkpoint":
                values["size"] = max(r["size"] for r in rows) + 5
            names = ", ".join(f'"{c}"' for c in values)
            conn.execute(f"INSERT INTO {table} ({names}) VALUES "
                         f"({', '.join('?' for _ in values)})", list(values.values()))
    conn.close()
    services = build_services(Settings(data_dir=copy))
    try:
        report = services.ledger.verify()
    finally:
        services.engine.dispose()
    assert not report.ok, (table, op)
    assert report.problem


def test_the_untouched_copy_verifies(template: Path, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    copy_exchange(template, copy)
    services = build_services(Settings(data_dir=copy))
    try:
        assert services.ledger.verify().ok
        assert services.ledger.verify().checkpoints >= 3
    finally:
        services.engine.dispose()


def test_the_problem_names_the_table(template: Path, tmp_path: Path) -> None:
    for table, sql in (
            ("audit_node", 'DELETE FROM audit_node WHERE level = 1 AND "index" = 0'),
            ("audit_entry", "UPDATE audit_entry SET purpose = 'HCOMPL' "
                            "WHERE seq = (SELECT max(seq) FROM audit_entry)"),
            ("audit_checkpoint", "DELETE FROM audit_checkpoint WHERE size = "
                                 "(SELECT min(size) FROM audit_checkpoint)"),
            ("audit_verification", "UPDATE audit_verification SET ok = 1 - ok")):
        copy = tmp_path / table
        copy_exchange(template, copy)
        with sqlite3.connect(copy / "exchange.db") as conn:
            conn.execute(sql)
        services = build_services(Settings(data_dir=copy))
        try:
            report = services.ledger.verify()
        finally:
            services.engine.dispose()
        assert not report.ok and table in (report.problem or ""), (table, report)

