"""Key custody operations: rotating key-encryption keys and erasing a resident.

Both run online, beside a serving exchange. Each step is recorded through ``record``
(the audit trail), which raises if it cannot record: a step that cannot be recorded is
not taken.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sqlmodel import select as sqlmodel_select

from exchange.ports import KeyProvider
from exchange.privacy.envelope import Vault
from exchange.store.repository import ResourceRepository
from exchange.store.tables import DataKeyRow

Record = Callable[[str, dict[str, Any]], None]
Progress = Callable[[int, int], None]
K = DataKeyRow.__table__.c  # type: ignore[attr-defined]


@dataclass
class Rotation:
    new_key: str
    rewrapped: int = 0
    retired: list[str] = field(default_factory=list)


def rotate_keys(engine: Engine, provider: KeyProvider, record: Record, *,
                retire: bool = False, batch: int = 500,
                progress: Progress | None = None) -> Rotation:
    """A new key-encryption key re-wraps every data key; content is not re-encrypted.
    With ``retire``, the old keys are destroyed once nothing is wrapped under them."""
    new_key = provider.rotate()
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(
            DataKeyRow.__table__).where(K.key_id != new_key)).scalar_one())  # type: ignore[attr-defined]
    record("key-rotation-start", {"new_key": new_key, "data_keys": total})
    done = Rotation(new_key)
    while True:
        with Session(engine) as session:
            rows = session.exec(sqlmodel_select(DataKeyRow).where(
                K.key_id != new_key).limit(batch)).all()
            if not rows:
                break
            for row in rows:
                context = Vault.context(row.owner)
                key = provider.unwrap(row.key_id, row.wrapped, context)
                row.key_id, row.wrapped = provider.wrap(key, context)
                session.add(row)
            session.commit()
        done.rewrapped += len(rows)
        record("key-rotation-batch", {"new_key": new_key, "rewrapped": len(rows),
                                      "done": done.rewrapped, "total": total})
        if progress:
            progress(done.rewrapped, total)
    if retire:
        with engine.connect() as conn:
            in_use = {k for (k,) in conn.execute(select(K.key_id).distinct())}
        for key_id in provider.key_ids:
            if key_id != new_key and key_id not in in_use:
                provider.retire(key_id)
                done.retired.append(key_id)
    record("key-rotation-done", {"new_key": new_key, "rewrapped": done.rewrapped,
                                 "retired": done.retired})
    return done


@dataclass(frozen=True)
class Erasure:
    resident: str
    resources: int
    versions: int


def erase_resident(repository: ResourceRepository, vault: Vault, resident: str) -> Erasure:
    """Crypto-shredding: destroy the resident's data key first (every copy of their
    ciphertext, backups included, becomes unreadable), then remove the rows and index
    entries from the live store. The caller records the erasure: the fact, no content."""
    vault.destroy(resident)
    resources, versions = repository.erase(resident)
    return Erasure(resident, resources, versions)
