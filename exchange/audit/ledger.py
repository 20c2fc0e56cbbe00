"""The append-only audit ledger.

Each entry is canonical JSON, encrypted with the ``_audit`` data key; the chain covers the
ciphertext, so verifying needs no key and the chain itself holds no patient data::

    leaf(n)  = SHA-256(ciphertext(n))
    chain(n) = SHA-256("exchange-audit/v1" | chain(n-1) | seq(n) as 8 bytes | leaf(n))
    chain(0) = 32 zero bytes

``verify`` recomputes every link and names the first entry that was changed, removed or
reordered. (A later ledger adds Merkle proofs and signed checkpoints to catch truncation.)
"""

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from exchange.errors import AuditUnavailable, KeyUnavailable
from exchange.ports import Clock
from exchange.privacy.envelope import Vault
from exchange.store.tables import AuditRow

AUDIT_OWNER = "_audit"
GENESIS = bytes(32)
A = AuditRow.__table__.c  # type: ignore[attr-defined]
_HEAD = select(A.seq, A.chain).order_by(A.seq.desc()).limit(1)


def leaf_hash(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def chain_hash(previous: bytes, seq: int, leaf: bytes) -> bytes:
    return hashlib.sha256(b"exchange-audit/v1" + previous + seq.to_bytes(8, "big") + leaf)\
        .digest()


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_bad: int | None = None
    problem: str | None = None


class AuditLedger:
    def __init__(self, engine: Engine, vault: Vault, clock: Clock) -> None:
        self._engine = engine
        self._vault = vault
        self._clock = clock
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> int:
        """Append one entry and commit it; ``AuditUnavailable`` if it is not durable."""
        with self._lock:
            try:
                self._vault.ensure_key(AUDIT_OWNER)
            except (SQLAlchemyError, KeyUnavailable, OSError) as exc:
                raise AuditUnavailable() from exc
            for _attempt in range(5):
                try:
                    return self._append_once(entry)
                except IntegrityError:
                    continue  # another process took this sequence number; read the head again
                except (SQLAlchemyError, KeyUnavailable, OSError, TypeError) as exc:
                    raise AuditUnavailable() from exc
            raise AuditUnavailable()

    def _append_once(self, entry: dict[str, Any]) -> int:
        now = self._clock.now()
        with self._engine.begin() as conn:
            head = conn.execute(_HEAD).first()
            seq = 1 if head is None else head[0] + 1
            previous = GENESIS if head is None else bytes.fromhex(head[1])
            body = orjson.dumps({**entry, "seq": seq}, option=orjson.OPT_SORT_KEYS)
            content = self._vault.seal(AUDIT_OWNER, ("audit", str(seq)), body)
            leaf = leaf_hash(content)
            conn.execute(insert(AuditRow), [{
                "seq": seq, "recorded_at": now, "leaf": leaf.hex(),
                "chain": chain_hash(previous, seq, leaf).hex(), "content": content}])
        return seq

    def size(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AuditRow)).scalar_one())

    def read(self, seq: int) -> dict[str, Any] | None:
        with Session(self._engine) as session:
            row = session.get(AuditRow, seq)
        if row is None:
            return None
        entry: dict[str, Any] = orjson.loads(
            self._vault.open(AUDIT_OWNER, ("audit", str(seq)), row.content))
        return entry

    def entries(self, batch: int = 1000) -> Iterator[dict[str, Any]]:
        last = 0
        while True:
            with self._engine.connect() as conn:
                rows = list(conn.execute(select(A.seq, A.content).where(A.seq > last)
                                         .order_by(A.seq).limit(batch)))
            if not rows:
                return
            for seq, content in rows:
                yield orjson.loads(self._vault.open(AUDIT_OWNER, ("audit", str(seq)), content))
                last = seq

    def verify(self, progress: Callable[[int], None] | None = None,
               batch: int = 5000) -> VerifyReport:
        previous, expected, checked = GENESIS, 1, 0
        while True:
            with self._engine.connect() as conn:
                rows = list(conn.execute(select(A.seq, A.leaf, A.chain, A.content)
                                         .where(A.seq >= expected).order_by(A.seq)
                                         .limit(batch)))
            if not rows:
                return VerifyReport(True, checked)
            for seq, leaf_hex, chain_hex, content in rows:
                if seq != expected:
                    return VerifyReport(False, checked, expected,
                                        f"entry {expected} was removed")
                leaf = leaf_hash(content)
                if leaf.hex() != leaf_hex:
                    return VerifyReport(False, checked, seq, f"entry {seq} was changed")
                link = chain_hash(previous, seq, leaf)
                if link.hex() != chain_hex:
                    return VerifyReport(False, checked, seq,
                                        f"entry {seq} was changed, removed or reordered")
                previous, expected, checked = link, seq + 1, checked + 1
            if progress is not None:
                progress(checked)
