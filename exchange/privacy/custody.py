"""Key custody operations: rotating key-encryption keys and erasing a resident.

Both run online, beside a serving exchange. Each step is recorded through ``record``
(the audit trail), which raises if it cannot record: a step that cannot be recorded is
not taken.

The data keys are the key provider's (its key store, never the database), so both act
on the provider alone: rotation re-wraps there, and erasure destroys the resident's data
key there, after which no copy of the database, with whatever else remains, opens their
rows.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exchange.ports import KeyProvider
from exchange.privacy.envelope import Vault
from exchange.store.repository import ResourceRepository

Record = Callable[[str, dict[str, Any]], None]
Progress = Callable[[int, int], None]


@dataclass
class Rotation:
    new_key: str
    rewrapped: int = 0
    retired: list[str] = field(default_factory=list)


def rotate_keys(provider: KeyProvider, record: Record, *, retire: bool = False,
                batch: int = 500, progress: Progress | None = None) -> Rotation:
    """A new key-encryption key re-wraps every data key; content is not re-encrypted.
    With ``retire``, the old keys are destroyed once nothing is wrapped under them."""
    new_key = provider.rotate()
    total = provider.data_key_count(not_under=new_key)
    record("key-rotation-start", {"new_key": new_key, "data_keys": total})
    done = Rotation(new_key)
    while rewrapped := provider.rewrap_data_keys(batch):
        done.rewrapped += rewrapped
        record("key-rotation-batch", {"new_key": new_key, "rewrapped": rewrapped,
                                      "done": done.rewrapped, "total": total})
        if progress:
            progress(done.rewrapped, total)
    if retire:
        for key_id in provider.key_ids:
            if key_id == provider.primary_key_id:
                continue
            try:
                provider.retire(key_id)
            except ValueError:
                continue  # still wraps a key (another rotation began meanwhile)
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
