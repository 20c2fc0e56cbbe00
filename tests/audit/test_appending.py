"""The append-only log: entries written in one commit, read back, and their leaves."""

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from exchange.audit.appending import (
    AUDIT_OWNER,
    AuditLog,
    filter_columns,
    open_entry,
)
from exchange.audit.merkle import CompactRange, leaf_hash
from exchange.clock import FixedClock
from exchange.errors import AuditUnavailable, KeyUnavailable
from exchange.privacy.envelope import Vault
from exchange.privacy.key_file import LocalKeyFile
from exchange.store.tables import AuditNode, AuditRow

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def entry(n: int, resident: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"action": "read", "outcome": "success", "residents": [resident], "n": n,
            "who": {"kind": "client", "organization": "Organization/clinic-a",
                    "purpose": "TREAT"}, **extra}


@pytest.fixture
def vault(engine: Engine, tmp_path: Path) -> Vault:
    return Vault(engine, LocalKeyFile(tmp_path / "keys.json"))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def durable() -> list[list[int]]:
    return []


@pytest.fixture
def log(engine: Engine, vault: Vault, clock: FixedClock, durable: list[list[int]]) -> AuditLog:
    return AuditLog(engine, vault, clock, on_durable=durable.append)


def test_append_then_read_back(log: AuditLog) -> None:
    assert log.size() == 0
    assert log.append(entry(1)) == 1
    assert log.append(entry(2)) == 2
    assert log.size() == 2
    # The entry comes back with its place in the log and the time it was recorded.
    assert log.read(1) == {**entry(1), "seq": 1, "time": "2026-03-01T09:00:00.000Z"}
    assert log.read(2) == {**entry(2), "seq": 2, "time": "2026-03-01T09:00:00.000Z"}
    assert log.read(3) is None and log.leaf(3) is None


def test_append_many_commits_together_with_consecutive_numbers(
        log: AuditLog, durable: list[list[int]]) -> None:
    log.append(entry(0))
    assert log.append_many([entry(1), entry(2), entry(3)]) == [2, 3, 4]
    assert durable == [[1], [2, 3, 4]]
    assert [e["n"] for e in log.entries()] == [0, 1, 2, 3]


def test_entry_is_stored_as_canonical_json_encrypted(log: AuditLog, vault: Vault) -> None:
    log.append({"who": {"purpose": "TREAT"}, "residents": ["秀英"], "action": "read"})
    content = log.ciphertext(1)
    assert "秀英".encode() not in content and b"TREAT" not in content
    plain = vault.open(AUDIT_OWNER, ("audit", "1"), content)
    assert plain == orjson.dumps({"action": "read", "residents": ["秀英"], "seq": 1,
                                  "time": "2026-03-01T09:00:00.000Z",
                                  "who": {"purpose": "TREAT"}}, option=orjson.OPT_SORT_KEYS)
    with pytest.raises(KeyUnavailable):  # bound to its place in the log
        vault.open(AUDIT_OWNER, ("audit", "2"), content)


def test_leaf_is_the_digest_of_the_encrypted_entry(log: AuditLog) -> None:
    log.append_many([entry(n) for n in range(3)])
    for seq in (1, 2, 3):
        assert log.leaf(seq) == leaf_hash(log.ciphertext(seq))


def test_append_stores_every_completed_subtree(log: AuditLog, engine: Engine) -> None:
    log.append_many([entry(n) for n in range(3)])
    for n in range(3, 11):
        log.append(entry(n))
    cr = CompactRange()
    expected = set()
    for seq in range(1, 12):
        leaf = log.leaf(seq)
        assert leaf is not None
        expected |= {(level, index, h.hex()) for level, index, h in cr.append(leaf)}
    with engine.connect() as conn:
        stored = {tuple(r) for r in conn.execute(select(
            AuditNode.level, AuditNode.index, AuditNode.hash))}  # type: ignore[call-overload]
    assert stored == expected
    assert (3, 0) in {(level, index) for level, index, _h in stored}


def test_entries_reads_in_order_after_a_number_in_batches(log: AuditLog) -> None:
    log.append_many([entry(n) for n in range(1, 8)])
    assert [e["seq"] for e in log.entries(after=2, batch=2)] == [3, 4, 5, 6, 7]
    assert list(log.entries(after=7)) == []


def test_filter_columns_are_stored_beside_the_entry(log: AuditLog, engine: Engine,
                                                    clock: FixedClock) -> None:
    log.append(entry(1))
    clock.advance(minutes=5)
    log.append({"action": "export", "outcome": "denied", "residents": ["alice", "bob"],
                "who": {"organization": "Organization/insurer", "purpose": "HPAYMT"}})
    with engine.connect() as conn:
        rows = list(conn.execute(text(
            "SELECT seq, recorded_at, action, outcome, resident, organization, purpose "
            "FROM audit_entry ORDER BY seq")))
    assert [r[2:] for r in rows] == [
        ("read", "success", "alice", "Organization/clinic-a", "TREAT"),
        ("export", "denied", None, "Organization/insurer", "HPAYMT")]
    assert rows[0][1].startswith("2026-03-01 09:00") and rows[1][1].startswith("2026-03-01 09:05")


def test_filter_columns_name_a_resident_only_when_there_is_one() -> None:
    assert filter_columns({"residents": ["alice"]})["resident"] == "alice"
    assert filter_columns({"residents": ["alice", "bob"]})["resident"] is None
    assert filter_columns({}) == {"recorded_at": None, "action": None, "outcome": None,
                                  "resident": None, "organization": None, "purpose": None}


def test_open_entry_decrypts_what_was_stored(log: AuditLog, vault: Vault) -> None:
    log.append(entry(1))
    assert open_entry(vault, 1, log.ciphertext(1)) == log.read(1)


def test_an_entry_that_cannot_be_written_is_refused_and_nothing_is_stored(
        log: AuditLog, durable: list[list[int]], engine: Engine) -> None:
    log.append(entry(1))
    with pytest.raises(AuditUnavailable):
        log.append_many([entry(2), {"not json": {1, 2}}])
    assert log.size() == 1 and durable == [[1]]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_node")).scalar_one() == 1
    assert log.append(entry(3)) == 2


def test_a_failed_store_is_refused(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_node"))
    with pytest.raises(AuditUnavailable):
        log.append(entry(1))
    with engine.connect() as conn:
        assert conn.execute(select(AuditRow.seq)).first() is None  # type: ignore[call-overload]


def test_two_logs_on_one_database_share_one_sequence(
        engine: Engine, vault: Vault, clock: FixedClock) -> None:
    """As two API workers would: each reads the head again in its own transaction."""
    first, second = AuditLog(engine, vault, clock), AuditLog(engine, vault, clock)
    assert [first.append(entry(1)), second.append(entry(2)), first.append(entry(3))] == [1, 2, 3]
    assert [e["n"] for e in second.entries()] == [1, 2, 3]


def test_concurrent_appends_are_group_committed_without_gaps(log: AuditLog) -> None:
    seqs: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(10):
            s = log.append(entry(n * 100 + i))
            with lock:
                seqs.append(s)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seqs) == list(range(1, 41))
    assert sorted(e["n"] for e in log.entries()) == sorted(n * 100 + i for n in range(4)
                                                           for i in range(10))
