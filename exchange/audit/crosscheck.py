"""What verify checks beyond the tree: the columns and tables a view reads.

A view narrows its scan by columns copied beside each entry (time, action, outcome,
resident, organization, purpose); the integrity view reads the checkpoint and
verification tables. None of them is under the Merkle tree, so each is checked against
what is: a column against the decrypted entry it was copied from, and every checkpoint,
export and verification against the ledger entry that recorded it (written in the same
transaction, under ``checkpoint``, ``exported`` and ``verification``). A doctored column,
a deleted checkpoint or a forged verification result then fails verify, naming the table
and row.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from exchange.audit.appending import FILTER_COLUMNS, filter_columns
from exchange.fhir.dates import parse_range
from exchange.store.repository import as_utc
from exchange.store.tables import AuditNode

N = AuditNode.__table__.c  # type: ignore[attr-defined]

# Decrypts entry ``seq`` from its stored ciphertext; raises if it cannot.
Opener = Callable[[int, bytes], dict[str, Any]]

# The actions of the exchange's own entries, when no operation's entry carries the row.
CHECKPOINT_ACTION = "checkpoint"
VERIFY_ACTION = "audit-verify"
EXPORT_ACTION = "audit-checkpoint-export"


def tree_nodes(size: int) -> int:
    """How many perfect subtrees (``audit_node`` rows) a tree of ``size`` leaves has."""
    return sum(size >> level for level in range(size.bit_length()))


def nodes_completed_by(conn: Connection, lo: int, hi: int,
                       lowest: int = 0) -> dict[tuple[int, int], str]:
    """The stored subtrees (of ``lowest`` level or above) whose last leaf lies in
    [lo, hi]: the ones appending those leaves completes, so that verify compares each
    with what it recomputes."""
    levels = []
    for level in range(lowest, (hi + 1).bit_length()):
        first, last = ((lo + (1 << level)) >> level) - 1, ((hi + 1) >> level) - 1
        if last >= first:
            levels.append(and_(N.level == level, N.index.between(first, last)))
    if not levels:
        return {}
    # Straight from the driver's cursor: verify reads two nodes per entry, and these are
    # plain integers and text that need no conversion by the result layer.
    result = conn.execute(select(N.level, N.index, N.hash).where(or_(*levels)))
    return {(level, index): h for level, index, h in result.cursor.fetchall()}


def _same_time(stored: Any, recorded: Any) -> bool:
    if stored is None or recorded is None:
        return stored is recorded
    # The column keeps what the database keeps; the entry says milliseconds.
    return abs((as_utc(stored) - as_utc(recorded)).total_seconds()) < 0.001


@dataclass
class CrossCheck:
    """Collects, entry by entry, what the tables must agree with."""

    # size: (root, time, note) as the entry that committed with the row recorded them
    checkpoints: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    exported: dict[int, str] = field(default_factory=dict)  # size: when
    verifications: Counter[tuple[str, bool, int, str | None]] = field(default_factory=Counter)

    def entry(self, seq: int, opener: Opener, content: bytes,
              stored: Sequence[Any]) -> str | None:
        """The problem with entry ``seq``'s columns, or None."""
        try:
            entry = opener(seq, content)
        except Exception:
            return f"audit_entry {seq} cannot be decrypted: forged, or its key is gone"
        expected = filter_columns(entry)
        for name, value in zip(FILTER_COLUMNS, stored, strict=True):
            same = _same_time(value, expected[name]) if name == "recorded_at" \
                else value == expected[name]
            if not same:
                return f"audit_entry {seq} column {name} was changed: its entry says otherwise"
        signed = entry.get("checkpoint")
        if isinstance(signed, dict) and isinstance(signed.get("size"), int):
            self.checkpoints[signed["size"]] = (str(signed.get("root")),
                                                str(signed.get("signed_at")),
                                                str(signed.get("note")))
        verified = entry.get("verification")
        if isinstance(verified, dict):
            self.verifications[_verification(verified)] += 1
        exported = entry.get("exported")
        if isinstance(exported, dict) and isinstance(exported.get("size"), int):
            self.exported[exported["size"]] = str(exported.get("at"))
        return None

    def tables(self, checkpoints: Sequence[Any],
               verifications: Sequence[Any]) -> str | None:
        """The first disagreement of the checkpoint and verification tables with the
        entries that recorded them, or None. ``checkpoints``: (SignedCheckpoint,
        exported_at) pairs; ``verifications``: (verified_at, ok, checked, problem)."""
        seen = set()
        for signed, exported_at in checkpoints:
            size = signed.checkpoint.size
            recorded = self.checkpoints.get(size)
            if recorded is None:
                return f"audit_checkpoint size {size} has no entry that recorded it (inserted)"
            root, time, note = recorded
            if root != signed.checkpoint.root.hex() or signed.note != note or \
                    not _same_time(signed.created_at, _instant(time)):
                return f"audit_checkpoint size {size} was changed: its entry says otherwise"
            at = self.exported.get(size)
            if not _same_time(exported_at, None if at is None else _instant(at)):
                return (f"audit_checkpoint size {size} exported_at was changed: the "
                        f"ledger records {'another' if at else 'no'} export")
            seen.add(size)
        missing = sorted(set(self.checkpoints) - seen)
        if missing:
            return f"audit_checkpoint size {missing[0]} was deleted: an entry recorded it"
        rows = Counter(_verification_row(r) for r in verifications)
        if rows != self.verifications:
            extra = rows - self.verifications
            return ("audit_verification holds a result no entry recorded (inserted or "
                    "changed)" if extra else
                    "audit_verification lost a result an entry recorded (deleted or changed)")
        return None


def _instant(text: str) -> datetime | None:
    try:
        return parse_range(text)[0]
    except ValueError:
        return None


def _verification(what: dict[str, Any]) -> tuple[str, bool, int, str | None]:
    moment = _instant(str(what.get("verified_at")))
    stamp = "" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    return stamp, bool(what.get("ok")), int(what.get("checked") or 0), what.get("problem")


def _verification_row(row: Any) -> tuple[str, bool, int, str | None]:
    stamp = as_utc(row[0]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23]
    return stamp, bool(row[1]), int(row[2]), row[3]
