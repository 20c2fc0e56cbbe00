"""The tree over the log, its proofs, signed checkpoints, witnesses and verification."""

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.engine import Engine

from exchange.audit.appending import AuditLog
from exchange.audit.checkpoint import Checkpoint, CheckpointError, sign
from exchange.audit.merkle import (
    ConsistencyProofError,
    InclusionProofError,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from exchange.audit.proofs import AuditProofs, VerifyReport
from exchange.clock import FixedClock
from exchange.errors import AuditUnavailable
from exchange.privacy.envelope import Vault
from exchange.privacy.key_file import LocalKeyFile

ORIGIN = "test.example/audit"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def log(engine: Engine, clock: FixedClock, tmp_path: Path) -> AuditLog:
    vault = Vault(engine, LocalKeyFile(tmp_path / "keys.json"))
    return AuditLog(engine, vault, clock)


@pytest.fixture
def proofs(engine: Engine, clock: FixedClock, log: AuditLog) -> AuditProofs:
    """Wired as the ledger wires them: appends sign due checkpoints on their transaction,
    and the proofs record what they sign through the log."""
    made = AuditProofs(engine, clock, KEY, ORIGIN, log.append_many)
    log.checkpointer = made.sign_if_due
    return made


def fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append({"action": "read", "outcome": "success", "i": i})


def leaves(log: AuditLog) -> list[bytes]:
    found = [log.leaf(seq) for seq in range(1, log.size() + 1)]
    assert all(found)
    return [leaf for leaf in found if leaf is not None]


def tamper(engine: Engine, sql: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


# -- tree and proofs ---------------------------------------------------------------------


def test_root_is_the_merkle_tree_hash_of_the_leaves_at_every_size(
        log: AuditLog, proofs: AuditProofs) -> None:
    assert proofs.root() == (0, root_of([]))
    fill(log, 13)
    every = leaves(log)
    for size in range(1, 14):
        assert proofs.root(size) == (size, root_of(every[:size]))
    assert proofs.root() == (13, root_of(every))


def test_inclusion_proofs_verify_and_corrupted_ones_fail(
        log: AuditLog, proofs: AuditProofs) -> None:
    fill(log, 11)
    every = leaves(log)
    size, root = proofs.root()
    for seq in range(1, size + 1):
        verify_inclusion(seq - 1, size, every[seq - 1], proofs.inclusion_proof(seq, size), root)
    proof = proofs.inclusion_proof(5, size)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    for leaf, index, path in ((every[4], 4, flipped), (every[4], 4, proof[:-1]),
                              (every[4], 5, proof), (every[5], 4, proof),
                              (every[4], 4, [*proof, proof[0]])):
        with pytest.raises(InclusionProofError):
            verify_inclusion(index, size, leaf, path, root)


def test_consistency_proofs_verify_and_corrupted_ones_fail(
        log: AuditLog, proofs: AuditProofs) -> None:
    fill(log, 6)
    _old, old_root = proofs.root()
    fill(log, 7)
    _new, new_root = proofs.root()
    proof = proofs.consistency_proof(6, 13)
    verify_consistency(6, 13, old_root, new_root, proof)
    flipped = [*proof[:-1], bytes([proof[-1][0] ^ 0x80]) + proof[-1][1:]]
    for path, old, root in ((flipped, 6, old_root), (proof[1:], 6, old_root),
                            (proof, 7, old_root), (proof, 6, new_root)):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(old, 13, root, new_root, path)


def test_an_incomplete_tree_is_unavailable(log: AuditLog, proofs: AuditProofs,
                                           engine: Engine) -> None:
    fill(log, 4)
    tamper(engine, 'DELETE FROM audit_node WHERE level = 2')
    with pytest.raises(AuditUnavailable):
        proofs.root()


# -- checkpoints -------------------------------------------------------------------------


def test_a_checkpoint_is_a_signed_note_of_origin_size_and_root(
        log: AuditLog, proofs: AuditProofs) -> None:
    fill(log, 5)
    signed = proofs.checkpoint()  # and an entry of its own, the sixth, that names it
    size, root = proofs.root(5)
    assert signed.checkpoint == Checkpoint(ORIGIN, size, root)
    assert signed.note == sign(signed.checkpoint, KEY)
    assert signed.note.startswith(f"{ORIGIN}\n5\n")
    assert proofs.open_checkpoint(signed.note) == signed.checkpoint
    assert proofs.latest_checkpoint() == signed
    proofs.public_key.verify(proofs.sign(b"receipt"), b"receipt")


def test_a_forged_or_foreign_checkpoint_does_not_open(log: AuditLog, proofs: AuditProofs,
                                                      engine: Engine) -> None:
    fill(log, 3)
    note = proofs.checkpoint().note
    with pytest.raises(CheckpointError):
        proofs.open_checkpoint(note.replace("\n3\n", "\n2\n", 1))
    other = Ed25519PrivateKey.generate()
    with pytest.raises(CheckpointError):
        proofs.open_checkpoint(sign(Checkpoint(ORIGIN, 3, proofs.root()[1]), other))
    foreign = AuditProofs(engine, FixedClock(datetime.now(UTC)), KEY, "elsewhere",
                          log.append_many)
    with pytest.raises(CheckpointError):
        foreign.open_checkpoint(note)


def test_appends_sign_a_checkpoint_once_a_minute(log: AuditLog, proofs: AuditProofs,
                                                 clock: FixedClock) -> None:
    # An append signs the tree before it, on its own transaction, when one is due.
    log.append({"i": 1})
    assert [c.checkpoint.size for c in proofs.checkpoints()] == []  # nothing to vouch for
    log.append({"i": 2})
    assert [c.checkpoint.size for c in proofs.checkpoints()] == [1]
    assert log.read(2)["checkpoint"]["size"] == 1  # named by the entry it commits with
    clock.advance(seconds=30)
    log.append({"i": 3})
    assert [c.checkpoint.size for c in proofs.checkpoints()] == [1]
    clock.advance(seconds=30)
    log.append({"i": 4})
    assert [c.checkpoint.size for c in proofs.checkpoints()] == [1, 3]
    assert proofs.checkpoints()[-1].created_at == clock.now()


def test_a_tree_that_did_not_grow_keeps_its_checkpoint(log: AuditLog,
                                                       proofs: AuditProofs) -> None:
    fill(log, 2)  # the second append signed size 1
    first = proofs.checkpoint()
    assert first.checkpoint.size == 2
    assert proofs.checkpoint() == first  # its own entry since is nothing to sign again
    assert [c.checkpoint.size for c in proofs.checkpoints()] == [1, 2]


def test_no_checkpoint_is_signed_over_a_rewritten_history(
        log: AuditLog, proofs: AuditProofs, engine: Engine, clock: FixedClock,
        caplog: pytest.LogCaptureFixture) -> None:
    fill(log, 4)  # the second append signed size 1
    tamper(engine, "UPDATE audit_node SET hash = :h WHERE level = 2 AND \"index\" = 0",
           h="00" * 32)
    clock.advance(minutes=2)
    with caplog.at_level(logging.ERROR, logger="exchange.audit"):
        assert log.append({"i": 5}) == 5  # durable all the same; the refusal is the alarm
    assert "audit checkpoint refused at size 4" in caplog.text
    with pytest.raises(AuditUnavailable):
        proofs.checkpoint()
    assert [c.checkpoint.size for c in proofs.checkpoints()] == [1]


# -- witnesses ---------------------------------------------------------------------------


def test_an_exported_checkpoint_is_remembered_and_must_stay_consistent(
        log: AuditLog, proofs: AuditProofs, engine: Engine, clock: FixedClock) -> None:
    assert proofs.last_exported() is None
    fill(log, 3)
    signed = proofs.checkpoint()
    clock.advance(minutes=1)
    proofs.mark_exported(signed.checkpoint.size)
    exported = proofs.last_exported()
    assert exported is not None and exported.checkpoint == signed.checkpoint
    assert exported.created_at == clock.now()  # for an export: when it was handed out
    fill(log, 4)
    assert proofs.consistent_with(signed.checkpoint)
    assert not proofs.consistent_with(Checkpoint(ORIGIN, 3, b"\x00" * 32))
    assert not proofs.consistent_with(Checkpoint(ORIGIN, 99, signed.checkpoint.root))
    tamper(engine, "UPDATE audit_node SET hash = :h WHERE level = 1 AND \"index\" = 0",
           h="00" * 32)
    assert not proofs.consistent_with(signed.checkpoint)


# -- verification ------------------------------------------------------------------------


def test_an_untouched_ledger_verifies(log: AuditLog, proofs: AuditProofs,
                                      clock: FixedClock) -> None:
    assert proofs.verify() == VerifyReport(True, 0)
    fill(log, 3)
    clock.advance(minutes=1)
    fill(log, 4)
    seen: list[int] = []
    report = proofs.verify(progress=seen.append, batch=3)
    assert report == VerifyReport(True, 7, None, None, 2)
    assert seen == [3, 6, 7]


def test_verify_names_a_changed_entry(log: AuditLog, proofs: AuditProofs,
                                      engine: Engine) -> None:
    fill(log, 6)
    tamper(engine, "UPDATE audit_entry SET content = CAST(X'00' || substr(content, 2) "
                   "AS BLOB) WHERE seq = 4")
    report = proofs.verify()
    assert not report.ok and report.first_bad == 4 and report.checked == 3
    assert "changed" in (report.problem or "")


def test_verify_names_a_removed_entry(log: AuditLog, proofs: AuditProofs,
                                      engine: Engine) -> None:
    fill(log, 6)
    tamper(engine, "DELETE FROM audit_entry WHERE seq = 2")
    report = proofs.verify()
    assert not report.ok and report.first_bad == 2 and "removed" in (report.problem or "")


def test_verify_finds_a_truncated_ledger(log: AuditLog, proofs: AuditProofs,
                                         engine: Engine) -> None:
    fill(log, 5)
    proofs.checkpoint()
    tamper(engine, "DELETE FROM audit_entry WHERE seq > 3")
    report = proofs.verify()
    assert not report.ok and report.first_bad == 4 and "truncated" in (report.problem or "")


def test_a_rewritten_history_breaks_a_witness_checkpoint(
        log: AuditLog, proofs: AuditProofs, engine: Engine) -> None:
    """Leaf and level-0 node rewritten together: the subtree recomputed above differs."""
    fill(log, 4)
    witness = proofs.open_checkpoint(proofs.checkpoint().note)
    fill(log, 2)
    tamper(engine, "UPDATE audit_entry SET content = X'0102', leaf = :h WHERE seq = 3",
           h=_leaf(b"\x01\x02"))
    tamper(engine, "UPDATE audit_node SET hash = :h WHERE level = 0 AND \"index\" = 2",
           h=_leaf(b"\x01\x02"))
    report = proofs.verify(witness=witness)
    # The subtree over entries 3 and 4 is recomputed and differs: found at entry 4.
    assert not report.ok and report.first_bad == 4 and "audit_node level 1 index 1" in (
        report.problem or "")


def test_a_forged_stored_checkpoint_fails_verification(
        log: AuditLog, proofs: AuditProofs, engine: Engine) -> None:
    fill(log, 2)
    tamper(engine, "UPDATE audit_checkpoint SET size = 2")
    report = proofs.verify()
    assert not report.ok and "not validly signed" in (report.problem or "")


def test_verify_from_a_trusted_checkpoint_skips_what_it_vouches_for(
        log: AuditLog, proofs: AuditProofs, engine: Engine, clock: FixedClock) -> None:
    fill(log, 8)
    start = proofs.checkpoint().checkpoint
    clock.advance(minutes=1)
    fill(log, 3)
    # An entry under the trusted checkpoint is not re-hashed ...
    tamper(engine, "UPDATE audit_entry SET content = X'00' WHERE seq = 2")
    report = proofs.verify(start=start)
    # (12: the checkpoint's own entry is the ninth)
    assert report.ok and report.checked == 12 and report.checkpoints == 1
    # ... but the stored subtrees that make its root are checked.
    tamper(engine, "UPDATE audit_node SET hash = :h WHERE level = 3 AND \"index\" = 0",
           h="00" * 32)
    report = proofs.verify(start=start)
    assert not report.ok and report.first_bad == 1


def test_a_witness_older_than_the_start_is_refused(log: AuditLog,
                                                   proofs: AuditProofs) -> None:
    fill(log, 8)
    start = proofs.checkpoint().checkpoint
    older = Checkpoint(ORIGIN, 4, proofs.root(4)[1])
    report = proofs.verify(start=start, witness=older)
    assert not report.ok and "older than the start" in (report.problem or "")


def test_each_verification_is_recorded(proofs: AuditProofs, clock: FixedClock) -> None:
    assert proofs.last_verification() is None
    proofs.record_verification(VerifyReport(True, 10))
    clock.advance(minutes=1)
    proofs.record_verification(VerifyReport(False, 3, 4, "entry 4 was removed"))
    assert proofs.last_verification() == {
        "verified_at": clock.now().isoformat(), "ok": False, "checked": 3,
        "problem": "entry 4 was removed"}


def _leaf(data: bytes) -> str:
    return leaf_hash(data).hex()
