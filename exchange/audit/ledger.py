"""The append-only audit ledger: a Merkle tree (RFC 6962) with signed checkpoints.

Each entry is canonical JSON encrypted with the ``_audit`` data key. The tree's leaves are
hashes of those ciphertexts, so the tree and its proofs hold no patient data and can be
checked without any key. Appends store the leaf and every subtree it completes; proofs are
served from those nodes. Checkpoints (origin, size, root) are signed with Ed25519 at least
once a minute while entries arrive, and on demand, and never unless the new tree is
consistent with the previous checkpoint.
"""

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from exchange.audit.checkpoint import Checkpoint, CheckpointError, open_note, sign
from exchange.audit.merkle import (
    CompactRange,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    verify_consistency,
)
from exchange.errors import AuditUnavailable, KeyUnavailable
from exchange.ports import Clock
from exchange.privacy.envelope import Vault
from exchange.store.repository import as_utc
from exchange.store.tables import (
    AuditCheckpointRow,
    AuditNode,
    AuditRow,
    AuditVerificationRow,
)

log = logging.getLogger("exchange.audit")

AUDIT_OWNER = "_audit"
A = AuditRow.__table__.c  # type: ignore[attr-defined]
N = AuditNode.__table__.c  # type: ignore[attr-defined]
C = AuditCheckpointRow.__table__.c  # type: ignore[attr-defined]
_HEAD = select(func.max(A.seq))


class _Pending:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.seqs: list[int] = []
        self.error: BaseException | None = None
        self.done = False


def _filters(entry: dict[str, Any]) -> dict[str, Any]:
    who = entry.get("who") or {}
    residents = entry.get("residents") or []
    return {"action": entry.get("action"), "outcome": entry.get("outcome"),
            "resident": residents[0] if len(residents) == 1 else None,
            "organization": who.get("organization"), "purpose": who.get("purpose")}


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


class AuditLedger:
    def __init__(self, engine: Engine, vault: Vault, clock: Clock,
                 signing_key: Ed25519PrivateKey, origin: str,
                 checkpoint_every: timedelta = timedelta(minutes=1)) -> None:
        self._engine = engine
        self._vault = vault
        self._clock = clock
        self._key = signing_key
        self.public_key = signing_key.public_key()
        self.origin = origin
        self._every = checkpoint_every
        self._lock = threading.Lock()  # checkpoints
        self._cond = threading.Condition()  # group commit of appends
        self._queue: list[_Pending] = []
        self._writing = False
        self._last_checkpoint_at: datetime | None = None

    # -- appending ------------------------------------------------------------------------

    def append(self, entry: dict[str, Any]) -> int:
        """Append one entry and commit it; ``AuditUnavailable`` if it is not durable."""
        return self.append_many([entry])[-1]

    def append_many(self, entries: list[dict[str, Any]]) -> list[int]:
        """Append entries durably, together; ``AuditUnavailable`` if they are not.

        Group commit: callers arriving while a batch is being written wait, and the next
        of them writes everything queued meanwhile in one transaction. Under load this
        turns many fsyncs into one without ever answering before the entry is durable.
        """
        pending = _Pending(entries)
        with self._cond:
            self._queue.append(pending)
            while not pending.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._writing = True
                batch, self._queue = self._queue, []
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    self._cond.notify_all()
        if pending.error is not None:
            raise AuditUnavailable() from pending.error
        if self._checkpoint_due():
            try:
                self.checkpoint()
            except AuditUnavailable:
                # The entries are durable; refusing to sign is the alarm, and verify names why.
                log.error("audit checkpoint refused at size %d", pending.seqs[-1])
        return pending.seqs

    def _write(self, batch: list["_Pending"]) -> None:
        entries = [e for p in batch for e in p.entries]
        error: BaseException | None = None
        seqs: list[int] = []
        try:
            self._vault.ensure_key(AUDIT_OWNER)
            for _attempt in range(5):
                try:
                    seqs = self._append_once(entries)
                    break
                except IntegrityError:
                    continue  # another process took these sequence numbers; read the head again
            else:
                error = AuditUnavailable()
        except (SQLAlchemyError, KeyUnavailable, OSError, TypeError) as exc:
            error = exc
        offset = 0
        for p in batch:
            p.error = error
            p.seqs = seqs[offset:offset + len(p.entries)]
            offset += len(p.entries)
            p.done = True

    def _append_once(self, entries: list[dict[str, Any]]) -> list[int]:
        now = self._clock.now()
        seqs: list[int] = []
        with self._engine.begin() as conn:
            head = int(conn.execute(_HEAD).scalar() or 0)
            rows, nodes = [], []
            # Right-edge hashes written in this batch, so siblings need not be read back.
            fresh: dict[tuple[int, int], bytes] = {}
            for offset, entry in enumerate(entries, start=1):
                seq = head + offset
                body = orjson.dumps({**entry, "seq": seq}, option=orjson.OPT_SORT_KEYS)
                content = self._vault.seal(AUDIT_OWNER, ("audit", str(seq)), body)
                leaf = leaf_hash(content)
                rows.append({"seq": seq, "recorded_at": now, "leaf": leaf.hex(),
                             "content": content, **_filters(entry)})
                h, level, index = leaf, 0, seq - 1
                nodes.append({"level": 0, "index": index, "hash": leaf.hex()})
                fresh[(0, index)] = leaf
                while index & 1:
                    left = fresh.get((level, index - 1))
                    if left is None:
                        stored = conn.execute(select(N.hash).where(
                            N.level == level, N.index == index - 1)).scalar_one()
                        left = bytes.fromhex(stored)
                    h = node_hash(left, h)
                    level, index = level + 1, index >> 1
                    nodes.append({"level": level, "index": index, "hash": h.hex()})
                    fresh[(level, index)] = h
                seqs.append(seq)
            conn.execute(insert(AuditRow), rows)
            conn.execute(insert(AuditNode), nodes)
        return seqs

    # -- reading ----------------------------------------------------------------------------

    def size(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(_HEAD).scalar() or 0)

    def read(self, seq: int) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            content = conn.execute(select(A.content).where(A.seq == seq)).scalar()
        if content is None:
            return None
        entry: dict[str, Any] = orjson.loads(
            self._vault.open(AUDIT_OWNER, ("audit", str(seq)), content))
        return entry

    def leaf(self, seq: int) -> bytes | None:
        with self._engine.connect() as conn:
            value = conn.execute(select(A.leaf).where(A.seq == seq)).scalar()
        return None if value is None else bytes.fromhex(value)

    def ciphertext(self, seq: int) -> bytes:
        with self._engine.connect() as conn:
            return bytes(conn.execute(select(A.content).where(A.seq == seq)).scalar_one())

    def entries(self, after: int = 0, batch: int = 1000) -> Iterator[dict[str, Any]]:
        last = after
        while True:
            with self._engine.connect() as conn:
                rows = list(conn.execute(select(A.seq, A.content).where(A.seq > last)
                                         .order_by(A.seq).limit(batch)))
            if not rows:
                return
            for seq, content in rows:
                yield orjson.loads(self._vault.open(AUDIT_OWNER, ("audit", str(seq)), content))
                last = seq

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
            entry = orjson.loads(self._vault.open(AUDIT_OWNER, ("audit", str(seq)), content))
            found = _filters(entry)
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
            return [(r[0], _utc(r[1]), r[2], r[3], r[4]) for r in conn.execute(stmt)]

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
            size = int(conn.execute(_HEAD).scalar() or 0) if size is None else size
            return size, mth(self._subtree(conn), 0, size)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        with self._engine.connect() as conn:
            return inclusion_proof(seq - 1, size, self._subtree(conn))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        with self._engine.connect() as conn:
            return consistency_proof(old, new, self._subtree(conn))

    # -- checkpoints --------------------------------------------------------------------------

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
                                row[2], _utc(row[3]))

    def checkpoints(self) -> list[SignedCheckpoint]:
        with self._engine.connect() as conn:
            rows = list(conn.execute(select(C.size, C.root, C.note, C.created_at)
                                     .order_by(C.size)))
        return [SignedCheckpoint(Checkpoint(self.origin, r[0], bytes.fromhex(r[1])), r[2],
                                 _utc(r[3])) for r in rows]

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
                                row[2], _utc(row[3]))

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

    def record_verification(self, report: "VerifyReport") -> None:
        with self._engine.begin() as conn:
            conn.execute(insert(AuditVerificationRow), [{
                "verified_at": self._clock.now(), "ok": report.ok, "checked": report.checked,
                "problem": report.problem}])

    def last_verification(self) -> dict[str, Any] | None:
        V = AuditVerificationRow.__table__.c  # type: ignore[attr-defined]  # noqa: N806
        with self._engine.connect() as conn:
            row = conn.execute(select(V.verified_at, V.ok, V.checked, V.problem)
                               .order_by(V.row.desc()).limit(1)).first()
        if row is None:
            return None
        return {"verified_at": _utc(row[0]).isoformat(), "ok": bool(row[1]),
                "checked": row[2], "problem": row[3]}

    def open_checkpoint(self, note: str) -> Checkpoint:
        checkpoint = open_note(note, self.public_key)
        if checkpoint.origin != self.origin:
            raise CheckpointError("the checkpoint is of another log")
        return checkpoint

    # -- verification -----------------------------------------------------------------------

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
                return self._report(False, 0, 1, f"the ledger no longer matches the "
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
            return self._report(False, 0, None, "the witness is older than the start")
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
                    return self._report(False, cr.size, expected,
                                        f"entry {expected} was removed")
                computed = leaf_hash(content)
                if computed.hex() != leaf_hex or node_hex != leaf_hex:
                    return self._report(False, cr.size, seq,
                                        f"entry {seq} was changed, inserted or reordered")
                cr.append(computed)
                expected = seq + 1
                while pending and pending[0].size == cr.size:
                    target = pending.pop(0)
                    if cr.root() != target.root:
                        who = "a witness's" if target is witness else "a signed"
                        return self._report(
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
            return self._report(False, cr.size, cr.size + 1,
                                f"the ledger was truncated: a checkpoint vouches for "
                                f"{pending[-1].size} entries, {cr.size} remain")
        if cr.size:
            _size, stored_root = self.root(cr.size)
            if stored_root != cr.root():
                return self._report(False, cr.size, None,
                                    "the stored tree nodes disagree with the entries")
        return self._report(True, cr.size, None, None, len(signed))

    @staticmethod
    def _report(ok: bool, checked: int, first_bad: int | None, problem: str | None,
                checkpoints: int = 0) -> VerifyReport:
        return VerifyReport(ok, checked, first_bad, problem, checkpoints)


def _utc(moment: datetime) -> datetime:
    return as_utc(moment)
