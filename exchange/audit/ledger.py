"""The append-only audit ledger: a Merkle tree (RFC 6962) with signed checkpoints.

Each entry is canonical JSON encrypted with the ``_audit`` data key. The tree's leaves are
hashes of those ciphertexts, so the tree and its proofs hold no patient data and can be
checked without any key. Appends store the leaf and every subtree it completes; proofs are
served from those nodes. Checkpoints (origin, size, root) are signed with Ed25519 at least
once a minute while entries arrive, and on demand, and never unless the new tree is
consistent with the previous checkpoint.

The ledger is three parts composed, each in its own module:

- ``appending.AuditLog``: the append-only log (group-committed appends, reading back);
- ``proofs.AuditProofs``: the tree, inclusion and consistency proofs, signed checkpoints,
  witnesses and full verification;
- ``views.AuditViews``: the filtered pages and counts the compliance views read.

``AuditLedger`` builds them and exposes their methods under one name.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import Engine

from exchange.audit.appending import AUDIT_OWNER, AuditLog, open_entry
from exchange.audit.checkpoint import Checkpoint
from exchange.audit.proofs import AuditProofs, SignedCheckpoint, VerifyReport
from exchange.audit.views import AuditViews
from exchange.ports import Clock
from exchange.privacy.envelope import Vault
from exchange.store.units import Unit, scope

__all__ = ["AUDIT_OWNER", "AuditLedger", "SignedCheckpoint", "VerifyReport"]


class AuditLedger:
    def __init__(self, engine: Engine, vault: Vault, clock: Clock,
                 signing_key: Ed25519PrivateKey, origin: str,
                 checkpoint_every: timedelta = timedelta(minutes=1)) -> None:
        self._vault = vault
        self._engine = engine
        log = AuditLog(engine, vault, clock)
        proofs = AuditProofs(engine, clock, signing_key, origin, log.append_many,
                             checkpoint_every)
        log.checkpointer = proofs.sign_if_due
        views = AuditViews(engine, vault)
        # How an entry's record of a request names a resident (exchange.privacy.request_scrub).
        self.resident_reference = vault.resident_reference
        self.public_key = proofs.public_key
        self.origin = proofs.origin
        # appending
        self.append = log.append
        self.append_many = log.append_many
        self.size = log.size
        self.read = log.read
        self.leaf = log.leaf
        self.ciphertext = log.ciphertext
        self.entries = log.entries
        # tree, checkpoints, witnesses, verification
        self.root = proofs.root
        self.inclusion_proof = proofs.inclusion_proof
        self.consistency_proof = proofs.consistency_proof
        self.checkpoint = proofs.checkpoint
        self.latest_checkpoint = proofs.latest_checkpoint
        self.checkpoints = proofs.checkpoints
        self.sign = proofs.sign
        self.open_checkpoint = proofs.open_checkpoint
        self.mark_exported = proofs.mark_exported
        self.last_exported = proofs.last_exported
        self.consistent_with = proofs.consistent_with
        self.record_verification = proofs.record_verification
        self.last_verification = proofs.last_verification
        self._proofs = proofs
        # views
        self.query = views.query
        self.counts = views.counts
        self.activity = views.activity

    @contextmanager
    def operation(self) -> Iterator[Unit]:
        """The scope of one operation: what it writes and the entries appended within it
        commit in one transaction when the block ends, or roll back together if it raises
        (``exchange.store.units``)."""
        with scope(self._engine) as unit:
            yield unit

    def verify(self, progress: Callable[[int], None] | None = None,
               witness: Checkpoint | None = None, batch: int = 20_000,
               start: Checkpoint | None = None) -> VerifyReport:
        """Verify the tree, and every column and table a view reads against the entries
        (which this decrypts; the tree alone needs no key)."""
        return self._proofs.verify(progress, witness, batch, start,
                                   opener=lambda seq, content: open_entry(self._vault, seq,
                                                                          content))
