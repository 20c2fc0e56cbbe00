"""The append-only log of the audit ledger: entries written durably, and read back.

Each entry is canonical JSON (sorted keys, its ``seq`` added) encrypted with the
``_audit`` data key, bound to ``("audit", seq)``. Its Merkle leaf (RFC 6962) is the hash
of that ciphertext, never of the entry, so the tree and its proofs hold no patient data
and can be checked without any key. An append stores, in the same transaction as the
entries, the leaf and every subtree it completes (``audit_node``); proofs are served from
those nodes (see ``exchange.audit.proofs``). A few filter columns (action, outcome, the
one resident, organization, purpose) are copied out of the entry beside it for the
compliance views, and its time; verify recomputes each from the decrypted entry.
"""

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from exchange.audit.merkle import leaf_hash, node_hash
from exchange.errors import AuditUnavailable, KeyUnavailable
from exchange.fhir.dates import to_instant
from exchange.ports import Clock
from exchange.privacy.envelope import Vault
from exchange.store.tables import AuditNode, AuditRow
from exchange.store.units import Unit, current_unit, detached, lock_ledger, writing

AUDIT_OWNER = "_audit"
A = AuditRow.__table__.c  # type: ignore[attr-defined]
N = AuditNode.__table__.c  # type: ignore[attr-defined]
HEAD = select(func.max(A.seq))


def filter_columns(entry: dict[str, Any]) -> dict[str, Any]:
    """The columns stored beside an entry so that views can narrow their scan: each is
    computed from the entry alone, so verify recomputes and compares every one."""
    who = entry.get("who") or {}
    residents = entry.get("residents") or []
    time = entry.get("time")
    # (fromisoformat: the entry's time is an instant the exchange wrote, always zoned)
    return {"recorded_at": datetime.fromisoformat(time) if isinstance(time, str) else None,
            "action": entry.get("action"), "outcome": entry.get("outcome"),
            "resident": residents[0] if len(residents) == 1 else None,
            "organization": who.get("organization"), "purpose": who.get("purpose")}


FILTER_COLUMNS = ("recorded_at", "action", "outcome", "resident", "organization", "purpose")


def open_entry(vault: Vault, seq: int, content: bytes) -> dict[str, Any]:
    """Decrypt the stored ciphertext of entry ``seq``."""
    entry: dict[str, Any] = orjson.loads(vault.open(AUDIT_OWNER, ("audit", str(seq)),
                                                    content))
    return entry


class _Pending:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.seqs: list[int] = []
        self.error: BaseException | None = None
        self.done = False


class AuditLog:
    """Appends entries (group-committed) and reads them back.

    ``on_durable`` is called with the sequence numbers of each successful append, after
    they are committed and outside every lock (the ledger signs due checkpoints there).
    """

    def __init__(self, engine: Engine, vault: Vault, clock: Clock,
                 on_durable: Callable[[list[int]], None] | None = None) -> None:
        self._engine = engine
        self._vault = vault
        self._clock = clock
        self.on_durable = on_durable
        # (connection, head) -> a checkpoint signed on that transaction, to record; or None
        self.checkpointer: Callable[[Connection, int], dict[str, Any] | None] | None = None
        self._cond = threading.Condition()  # group commit of appends
        self._queue: list[_Pending] = []
        self._writing = False

    # -- appending ------------------------------------------------------------------------

    def append(self, entry: dict[str, Any]) -> int:
        """Append one entry and commit it; ``AuditUnavailable`` if it is not durable."""
        return self.append_many([entry])[-1]

    def append_many(self, entries: list[dict[str, Any]]) -> list[int]:
        """Append entries durably, together; ``AuditUnavailable`` if they are not.

        Within an operation that has written (``exchange.store.units``), the entries join
        its transaction: they commit with its writes, or neither does, and "durable" is
        that commit. Otherwise, group commit: callers arriving while a batch is being
        written wait, and the next of them writes everything queued meanwhile in one
        transaction. Under load this turns many fsyncs into one without ever answering
        before the entry is durable.
        """
        unit = current_unit(self._engine)
        if unit is not None:
            return self._append_within(unit, entries)
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
                    with detached():
                        self._write(batch)
                finally:
                    self._cond.acquire()
                    self._writing = False
                    self._cond.notify_all()
        if pending.error is not None:
            raise AuditUnavailable() from pending.error
        if self.on_durable is not None:
            self.on_durable(pending.seqs)
        return pending.seqs

    def _append_within(self, unit: Unit, entries: list[dict[str, Any]]) -> list[int]:
        attached = unit.take_attachments()
        if attached and entries:
            entries = [{**entries[0], **attached}, *entries[1:]]
        try:
            self._vault.ensure_key(AUDIT_OWNER)
            with writing(self._engine) as conn:
                seqs = self._append_on(conn, entries)
        except (SQLAlchemyError, KeyUnavailable, OSError, TypeError) as exc:
            raise AuditUnavailable() from exc
        if self.on_durable is not None:
            on_durable = self.on_durable
            unit.after_commit(lambda: on_durable(seqs))
        return seqs

    def _write(self, batch: list[_Pending]) -> None:
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
        with writing(self._engine) as conn:
            return self._append_on(conn, entries)

    def _append_on(self, conn: Connection, entries: list[dict[str, Any]]) -> list[int]:
        now = self._clock.now()
        seqs: list[int] = []
        lock_ledger(conn)
        head = int(conn.execute(HEAD).scalar() or 0)
        if self.checkpointer is not None and entries:
            # A checkpoint due is signed here, of the tree before this batch, and named
            # by the batch's first entry: row and entry commit together.
            signed = self.checkpointer(conn, head)
            if signed is not None:
                entries = [{**entries[0], "checkpoint": signed}, *entries[1:]]
        rows, nodes = [], []
        # Right-edge hashes written in this batch, so siblings need not be read back.
        fresh: dict[tuple[int, int], bytes] = {}
        for offset, entry in enumerate(entries, start=1):
            seq = head + offset
            # The time is sealed in the entry and the column is read from it, so that
            # verify can tell a doctored column from the entry (a view filters on it).
            entry = {**entry, "seq": seq, "time": entry.get("time") or to_instant(now)}
            body = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
            content = self._vault.seal(AUDIT_OWNER, ("audit", str(seq)), body)
            leaf = leaf_hash(content)
            rows.append({"seq": seq, "leaf": leaf.hex(), "content": content,
                         **filter_columns(entry)})
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
            return int(conn.execute(HEAD).scalar() or 0)

    def read(self, seq: int) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            content = conn.execute(select(A.content).where(A.seq == seq)).scalar()
        if content is None:
            return None
        return open_entry(self._vault, seq, content)

    def leaf(self, seq: int) -> bytes | None:
        """The Merkle leaf of entry ``seq``: the hash of its ciphertext."""
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
                yield open_entry(self._vault, seq, content)
                last = seq
