"""What proves the audit log: its Merkle tree, signed checkpoints and full verification.

The tree (RFC 6962) is read from the subtree hashes each append stored (``audit_node``),
so roots and inclusion or consistency proofs never decrypt an entry. Checkpoints (origin,
size, root; see ``exchange.audit.checkpoint`` for the signed-note format) are signed with
Ed25519 at least once a minute while entries arrive (by the append, on its transaction,
of the tree before it), and on demand, and never unless the new tree is consistent with
the previous checkpoint. A checkpoint handed to a witness is marked exported; today's tree
must still extend it. Every checkpoint, export and verification row commits with the
ledger entry that names it (the operation's, or one of the exchange's own), so that
verify can pair them (``exchange.audit.crosscheck``). Verification recomputes every leaf
and every stored subtree from the stored ciphertexts and checks the tree against every
signed checkpoint, and against a witness's if given; each run's outcome is recorded.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.audit.appending import FILTER_COLUMNS, HEAD
from exchange.audit.checkpoint import Checkpoint, CheckpointError, open_note, sign
from exchange.audit.crosscheck import (
    CHECKPOINT_ACTION,
    EXPORT_ACTION,
    VERIFY_ACTION,
    CrossCheck,
    Opener,
    nodes_completed_by,
    tree_nodes,
)
from exchange.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    verify_consistency,
)
from exchange.errors import AuditUnavailable
from exchange.fhir.dates import parse_range, to_instant
from exchange.ports import Clock
from exchange.store.repository import as_utc
from exchange.store.tables import (
    AuditCheckpointRow,
    AuditNode,
    AuditRow,
    AuditVerificationRow,
)
from exchange.store.units import Unit, in_scope, lock_ledger, scope, writing

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
                 origin: str, record: Callable[[list[dict[str, Any]]], list[int]],
                 checkpoint_every: timedelta = timedelta(minutes=1)) -> None:
        self._engine = engine
        self._record = record  # appends entries (within the present unit, if any)
        self._own_tail: int | None = None  # the seq of our last checkpoint's own entry
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

    def sign_if_due(self, conn: Connection, head: int) -> dict[str, Any] | None:
        """Within an append, on its transaction: sign a checkpoint of the tree before it
        if the last one is older than the interval; what the batch's first entry records.

        Refusing to sign (the tree no longer extends the last checkpoint) is the alarm:
        logged, and named by verify; the entries are still appended.
        """
        if head == 0 or not self._due():
            return None  # (an empty tree is signed only when asked)
        try:
            made = self._sign_on(conn, head)
        except (ProofError, AuditUnavailable):  # inconsistent, or a subtree is missing
            log.error("audit checkpoint refused at size %d", head)
            return None
        return None if made is None else made[0]

    def _due(self) -> bool:
        now = self._clock.now()
        if self._last_checkpoint_at is None:
            latest = self.latest_checkpoint()
            self._last_checkpoint_at = latest.created_at if latest else None
        return self._last_checkpoint_at is None or now - self._last_checkpoint_at >= self._every

    def _sign_on(self, conn: Connection,
                 head: int) -> tuple[dict[str, Any], SignedCheckpoint] | None:
        """Sign the tree of ``head`` entries and insert its row on ``conn``; None if the
        last checkpoint is of that size already. ``ProofError`` if the tree does not
        extend the last checkpoint."""
        row = conn.execute(select(C.size, C.root).order_by(C.size.desc()).limit(1)).first()
        if row is not None and row[0] >= head:
            return None
        subtree = self._subtree(conn)
        root = mth(subtree, 0, head)
        if row is not None and row[0] > 0:  # every tree extends the empty one
            verify_consistency(row[0], head, bytes.fromhex(row[1]), root,
                               consistency_proof(row[0], head, subtree))
        checkpoint = Checkpoint(self.origin, head, root)
        note = sign(checkpoint, self._key)
        signed_at = to_instant(self._clock.now())
        created = parse_range(signed_at)[0]
        conn.execute(insert(AuditCheckpointRow), [{
            "size": head, "root": root.hex(), "note": note, "created_at": created}])
        self._last_checkpoint_at = created
        return ({"size": head, "root": root.hex(), "signed_at": signed_at, "note": note},
                SignedCheckpoint(checkpoint, note, created))

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
        """Sign the current tree now, if it grew and is consistent with the last
        checkpoint. The row commits with the ledger entry that names it: the present
        operation's (an officer's integrity view, an operator's export), or else one of
        its own."""
        nested = in_scope(self._engine)
        try:
            with scope(self._engine) as unit:
                with writing(self._engine) as conn:
                    lock_ledger(conn)
                    head = int(conn.execute(HEAD).scalar() or 0)
                    # Only the entry of this process's own last checkpoint since: the
                    # tree grew by nothing that needs vouching for.
                    made = None if head == self._own_tail else self._sign_on(conn, head)
                if made is not None:
                    own = self._named_by_entry(unit, nested, "checkpoint", made[0],
                                               CHECKPOINT_ACTION, "success")
                    self._own_tail = own if own is not None else self._own_tail
        except ProofError as exc:
            raise AuditUnavailable("Refusing to sign a checkpoint inconsistent with "
                                   "the previous one.") from exc
        except (SQLAlchemyError, ValueError) as exc:
            raise AuditUnavailable() from exc
        if made is not None:
            return made[1]
        latest = self.latest_checkpoint()
        assert latest is not None  # _sign_on signs when there is none
        return latest

    def _named_by_entry(self, unit: Unit, nested: bool, key: str, value: object,
                        action: str, outcome: str) -> int | None:
        """Have the entry that commits with ``unit`` name ``value`` under ``key``: the
        present operation's (``nested``), or else an entry of the exchange's own act,
        appended now (its seq is returned)."""
        unit.attach(key, value)
        if nested:
            return None
        return self._record([{"time": to_instant(self._clock.now()), "action": action,
                              "outcome": outcome, "status": 200,
                              "who": {"kind": "exchange", "role": "exchange"},
                              "residents": []}])[-1]

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
        """Mark the checkpoint handed to a witness; the entry of the operation that
        exported it names it (or one of its own), so verify can pair the two."""
        nested = in_scope(self._engine)
        at = to_instant(self._clock.now())
        with scope(self._engine) as unit:
            with writing(self._engine) as conn:
                conn.execute(update(AuditCheckpointRow).where(C.size == size)
                             .values(exported_at=parse_range(at)[0]))
            self._named_by_entry(unit, nested, "exported", {"size": size, "at": at},
                                 EXPORT_ACTION, "success")

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
        """Keep the outcome; the entry of the operation that verified names it (an
        officer's or operator's), or else an entry of its own, in the same transaction."""
        nested = in_scope(self._engine)
        time = to_instant(self._clock.now())
        try:
            with scope(self._engine) as unit:
                with writing(self._engine) as conn:
                    conn.execute(insert(AuditVerificationRow), [{
                        "verified_at": parse_range(time)[0], "ok": report.ok,
                        "checked": report.checked, "problem": report.problem}])
                self._named_by_entry(unit, nested, "verification", {
                    "verified_at": time, "ok": report.ok, "checked": report.checked,
                    "problem": report.problem}, VERIFY_ACTION,
                    "success" if report.ok else "failure")
        except SQLAlchemyError as exc:
            raise AuditUnavailable() from exc

    def _checkpoint_rows(self) -> list[tuple[SignedCheckpoint, datetime | None]]:
        with self._engine.connect() as conn:
            rows = list(conn.execute(select(C.size, C.root, C.note, C.created_at,
                                            C.exported_at).order_by(C.size)))
        return [(SignedCheckpoint(Checkpoint(self.origin, r[0], bytes.fromhex(r[1])), r[2],
                                  as_utc(r[3])), r[4]) for r in rows]

    def _verification_rows(self) -> list[Any]:
        with self._engine.connect() as conn:
            return list(conn.execute(select(V.verified_at, V.ok, V.checked, V.problem)))

    def last_verification(self) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            # By time, which verify binds; the row number is only the table's key.
            row = conn.execute(select(V.verified_at, V.ok, V.checked, V.problem)
                               .order_by(V.verified_at.desc(), V.row.desc()).limit(1)).first()
        if row is None:
            return None
        return {"verified_at": as_utc(row[0]).isoformat(), "ok": bool(row[1]),
                "checked": row[2], "problem": row[3]}

    def verify(self, progress: Callable[[int], None] | None = None,
               witness: Checkpoint | None = None, batch: int = 20_000,
               start: Checkpoint | None = None,
               opener: Opener | None = None) -> VerifyReport:
        """Recompute every leaf and the tree; check it against every signed checkpoint and,
        if given, a witness's checkpoint. Names the first entry found changed, removed,
        inserted or reordered, or the span of entries a checkpoint no longer matches.

        ``start``: a checkpoint already trusted (verified before, or kept by a witness);
        entries up to it are not re-hashed, only the stored subtrees that make its root.

        Every stored subtree (``audit_node``) is recomputed and compared, and their number
        must be the tree's. With ``opener`` (which decrypts an entry), every column a view
        filters on is recomputed from its entry and compared, and the checkpoint and
        verification tables are checked against the entries that recorded them.
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
        while pending and pending[0].size <= cr.size:  # the empty tree, or the start
            if pending.pop(0).root != (cr.root() if cr.size else EMPTY_ROOT):
                return VerifyReport(False, 0, cr.size + 1,
                                    "a checkpoint no longer matches the tree it signed")
        audit = CrossCheck()
        # The filter columns only when they are checked (the tree alone needs none).
        columns = [A[c] for c in FILTER_COLUMNS] if opener is not None else []
        while True:
            with self._engine.connect() as conn:
                # Each leaf's own node comes with it; the subtrees above, in one read.
                rows = conn.execute(
                    select(A.seq, A.leaf, N.hash, A.content, *columns)
                    .outerjoin(AuditNode, (N.level == 0) & (N.index == A.seq - 1))
                    .where(A.seq >= expected).order_by(A.seq).limit(batch)).all()
                nodes = nodes_completed_by(conn, rows[0][0] - 1, rows[-1][0] - 1,
                                           lowest=1) if rows else {}
            for seq, leaf_hex, node_hex, content, *stored in rows:
                if seq != expected:
                    return VerifyReport(False, cr.size, expected,
                                        f"entry {expected} was removed")
                computed = leaf_hash(content)
                if computed.hex() != leaf_hex:
                    return VerifyReport(False, cr.size, seq,
                                        f"entry {seq} was changed, inserted or reordered")
                if node_hex != leaf_hex:
                    how = "is missing" if node_hex is None else "was changed"
                    return VerifyReport(False, cr.size, seq,
                                        f"audit_node level 0 index {seq - 1} {how}")
                for level, index, h in cr.append(computed)[1:]:
                    node = nodes.get((level, index))
                    if node != h.hex():
                        how = "is missing" if node is None else "was changed"
                        return VerifyReport(False, cr.size - 1, seq,
                                            f"audit_node level {level} index {index} {how}")
                if opener is not None:
                    problem = audit.entry(seq, opener, content, stored)
                    if problem is not None:
                        return VerifyReport(False, cr.size - 1, seq, problem)
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
        with self._engine.connect() as conn:
            node_rows = int(conn.execute(select(func.count()).select_from(
                AuditNode.__table__)).scalar_one())  # type: ignore[attr-defined]
        if node_rows != tree_nodes(cr.size):
            return VerifyReport(False, cr.size, None,
                                f"audit_node holds {node_rows} rows where a tree of "
                                f"{cr.size} leaves has {tree_nodes(cr.size)}: rows were "
                                f"inserted or removed")
        if opener is not None and start is None:
            problem = audit.tables(self._checkpoint_rows(), self._verification_rows())
            if problem is not None:
                return VerifyReport(False, cr.size, None, problem)
        return VerifyReport(True, cr.size, None, None, len(signed))
