"""What proves the audit log: its Merkle tree, signed checkpoints and full verification.

The tree (RFC 6962) is read from the subtree hashes each append stored (``audit_node``),
so roots and inclusion or consistency proofs never decrypt an entry. Checkpoints (origin,
size, root; see ``exchange.audit.checkpoint`` for the signed-note format) are signed with
Ed25519 at least once a minute while entries arrive, and on demand, and never unless the
new tree is consistent with the previous checkpoint. A checkpoint handed to a witness is
marked exported; today's tree must still extend it. Verification recomputes every leaf
from the stored ciphertexts and checks the tree against every signed checkpoint, and
against a witness's if given; each run's outcome is recorded.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.audit.appending import HEAD
from exchange.audit.checkpoint import Checkpoint, CheckpointError, open_note, sign
from exchange.audit.merkle import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    verify_consistency,
)
from exchange.errors import AuditUnavailable
from exchange.ports import Clock
from exchange.store.repository import as_utc
from exchange.store.tables import (
    AuditCheckpointRow,
    AuditNode,
    AuditRow,
    AuditVerificationRow,
)

log = logging.getLogger("exchange.audit")

A = AuditRow.__table__.c  # type: ignore[attr-defined]
N = AuditNode.__table__.c  # type: ignore[attr-defined]
C = AuditCheckpointRow.__table__.c  # type: ignore[attr-defined]
V = AuditVerificationRow.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: str
    created_at: datetime


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad: int | None = None
    problem: str | None = None
    checkpoints: int = 0


class AuditProofs:
    """The tree over the log's leaves, its signed checkpoints, and verification."""

    def __init__(self, engine: Engine, clock: Clock, signing_key: Ed25519PrivateKey,
                 origin: str, checkpoint_every: timedelta = timedelta(minutes=1)) -> None:
        self._engine = engine
        self._clock = clock
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.origin = origin
        self._every = checkpoint_every
        self._lock = threading.Lock()  # checkpoints
        self._last_checkpoint_at: datetime | None = None

    # -- tree -----------------------------------------------------------------------------

    def _subtree(self, conn: Connection) -> Callable[[int, int], bytes]:
        def subtree(a: int, b: int) -> bytes:
            level = (b - a).bit_length() - 1
            value = conn.execute(select(N.hash).where(N.level == level,
                                                      N.index == a >> level)).scalar()
            if value is None:
                raise AuditUnavailable("The audit tree is incomplete.")
            return bytes.fromhex(value)

        return subtree

    def root(self, size: int | None = None) -> tuple[int, bytes]:
        with self._engine.connect() as conn:
            size = int(conn.execute(HEAD).scalar() or 0) if size is None else size
            return size, mth(self._subtree(conn), 0, size)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        with self._engine.connect() as conn:
            return inclusion_proof(seq - 1, size, self._subtree(conn))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        with self._engine.connect() as conn:
            return consistency_proof(old, new, self._subtree(conn))

    # -- checkpoints --------------------------------------------------------------------------

    def checkpoint_if_due(self, seqs: list[int]) -> None:
        """After an append: sign a checkpoint if the last one is older than the interval.

        The entries are durable by now; refusing to sign is the alarm, and verify names why.
        """
        if self._checkpoint_due():
            try:
                self.checkpoint()
            except AuditUnavailable:
                log.error("audit checkpoint refused at size %d", seqs[-1])

    def _checkpoint_due(self) -> bool:
        now = self._clock.now()
        if self._last_checkpoint_at is None:
            latest = self.latest_checkpoint()
            self._last_checkpoint_at = latest.created_at if latest else None
        return self._last_checkpoint_at is None or now - self._last_checkpoint_at >= self._every

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(C.size, C.root, C.note, C.created_at)
                               .order_by(C.size.desc()).limit(1)).first()
        if row is None:
            return None
        return SignedCheckpoint(Checkpoint(self.origin, row[0], bytes.fromhex(row[1])),
                                row[2], as_utc(row[3]))

    def checkpoints(self) -> list[SignedCheckpoint]:
        with self._engine.connect() as conn:
            rows = list(conn.execute(select(C.size, C.root, C.note, C.created_at)
                                     .order_by(C.size)))
        return [SignedCheckpoint(Checkpoint(self.origin, r[0], bytes.fromhex(r[1])), r[2],
                                 as_utc(r[3])) for r in rows]

    def checkpoint(self) -> SignedCheckpoint:
        """Sign the current tree, if it grew and is consistent with the last checkpoint."""
        with self._lock:
            try:
                previous = self.latest_checkpoint()
                size, root = self.root()
                if previous is not None and previous.checkpoint.size == size:
                    return previous
                if previous is not None:
                    old = previous.checkpoint
                    verify_consistency(old.size, size, old.root, root,
                                       self.consistency_proof(old.size, size))
                checkpoint = Checkpoint(self.origin, size, root)
                note = sign(checkpoint, self._key)
                now = self._clock.now()
                with self._engine.begin() as conn:
                    conn.execute(insert(AuditCheckpointRow), [{
                        "size": size, "root": root.hex(), "note": note, "created_at": now}])
                self._last_checkpoint_at = now
                return SignedCheckpoint(checkpoint, note, now)
            except ProofError as exc:
                raise AuditUnavailable("Refusing to sign a checkpoint inconsistent with "
                                       "the previous one.") from exc
            except (SQLAlchemyError, ValueError) as exc:
                raise AuditUnavailable() from exc

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature by the exchange's key (checkpoints, consent receipts)."""
        return self._key.sign(data)

    def open_checkpoint(self, note: str) -> Checkpoint:
        checkpoint = open_note(note, self.public_key)
        if checkpoint.origin != self.origin:
            raise CheckpointError("the checkpoint is of another log")
        return checkpoint

    # -- witnesses ----------------------------------------------------------------------------

    def mark_exported(self, size: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(update(AuditCheckpointRow).where(C.size == size)
                         .values(exported_at=self._clock.now()))

    def last_exported(self) -> SignedCheckpoint | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(C.size, C.root, C.note, C.exported_at)
                               .where(C.exported_at.is_not(None))
                               .order_by(C.size.desc()).limit(1)).first()
        if row is None:
            return None
        return SignedCheckpoint(Checkpoint(self.origin, row[0], bytes.fromhex(row[1])),
                                row[2], as_utc(row[3]))

    def consistent_with(self, checkpoint: Checkpoint) -> bool:
        """Whether today's tree still extends ``checkpoint`` (checked by a proof)."""
        try:
            size, root = self.root()
            if size < checkpoint.size:
                return False
            verify_consistency(checkpoint.size, size, checkpoint.root, root,
                               self.consistency_proof(checkpoint.size, size))
            return True
        except (ProofError, ValueError, AuditUnavailable):
            return False

    # -- verification -----------------------------------------------------------------------

    def record_verification(self, report: VerifyReport) -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(AuditVerificationRow), [{
                "verified_at": self._clock.now(), "ok": report.ok, "checked": report.checked,
                "problem": report.problem}])

    def last_verification(self) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(V.verified_at, V.ok, V.checked, V.problem)
                               .order_by(V.row.desc()).limit(1)).first()
        if row is None:
            return None
        return {"verified_at": as_utc(row[0]).isoformat(), "ok": bool(row[1]),
                "checked": row[2], "problem": row[3]}

    def verify(self, progress: Callable[[int], None] | None = None,
               witness: Checkpoint | None = None, batch: int = 20_000,
               start: Checkpoint | None = None) -> VerifyReport:
        """Recompute every leaf and the tree; check it against every signed checkpoint and,
        if given, a witness's checkpoint. Names the first entry found changed, removed,
        inserted or reordered, or the span of entries a checkpoint no longer matches.

        ``start``: a checkpoint already trusted (verified before, or kept by a witness);
        entries up to it are not re-hashed, only the stored subtrees that make its root.
        """
        signed = self.checkpoints()
        if start is not None:
            with self._engine.connect() as conn:
                try:
                    cr = CompactRange.at(start.size, self._subtree(conn))
                except AuditUnavailable:
                    cr = CompactRange()
            if cr.size != start.size or cr.root() != start.root:
                return VerifyReport(False, 0, 1, f"the ledger no longer matches the "
                                    f"checkpoint at size {start.size} it was to start from")
            signed = [c for c in signed if c.checkpoint.size > start.size]
        for cp in signed:
            try:
                if self.open_checkpoint(cp.note) != cp.checkpoint:
                    raise CheckpointError("the stored checkpoint differs from its note")
            except CheckpointError:
                return VerifyReport(False, 0, None, f"the checkpoint at size "
                                    f"{cp.checkpoint.size} is not validly signed")
        targets = sorted({*(c.checkpoint for c in signed), *([witness] if witness else [])},
                         key=lambda c: c.size)
        if start is None:
            cr = CompactRange()
        elif witness is not None and witness.size < start.size:
            return VerifyReport(False, 0, None, "the witness is older than the start")
        expected, previous_size = cr.size + 1, cr.size
        pending = list(targets)
        while True:
            with self._engine.connect() as conn:
                rows = list(conn.execute(
                    select(A.seq, A.leaf, A.content, N.hash)
                    .outerjoin(AuditNode, (N.level == 0) & (N.index == A.seq - 1))
                    .where(A.seq >= expected).order_by(A.seq).limit(batch)))
            for seq, leaf_hex, content, node_hex in rows:
                if seq != expected:
                    return VerifyReport(False, cr.size, expected,
                                        f"entry {expected} was removed")
                computed = leaf_hash(content)
                if computed.hex() != leaf_hex or node_hex != leaf_hex:
                    return VerifyReport(False, cr.size, seq,
                                        f"entry {seq} was changed, inserted or reordered")
                cr.append(computed)
                expected = seq + 1
                while pending and pending[0].size == cr.size:
                    target = pending.pop(0)
                    if cr.root() != target.root:
                        who = "a witness's" if target is witness else "a signed"
                        return VerifyReport(
                            False, cr.size, previous_size + 1,
                            f"entries {previous_size + 1}..{target.size} no longer match "
                            f"{who} checkpoint: changed, removed, inserted or reordered "
                            f"(a fork of the log)")
                    previous_size = target.size
            if progress is not None:
                progress(cr.size)
            if len(rows) < batch:
                break
        if pending:
            return VerifyReport(False, cr.size, cr.size + 1,
                                f"the ledger was truncated: a checkpoint vouches for "
                                f"{pending[-1].size} entries, {cr.size} remain")
        if cr.size:
            _size, stored_root = self.root(cr.size)
            if stored_root != cr.root():
                return VerifyReport(False, cr.size, None,
                                    "the stored tree nodes disagree with the entries")
        return VerifyReport(True, cr.size, None, None, len(signed))
