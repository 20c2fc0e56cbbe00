"""Ports: the small interfaces the exchange needs from the outside world.

Implementations are picked in ``exchange.app`` only (the composition root).
"""

from datetime import datetime
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class Monotonic(Protocol):
    """Seconds on a clock that never goes back: for how long something took or was cached,
    never for what time it is."""

    def seconds(self) -> float: ...


class KeyProvider(Protocol):
    """Key custody: the key-encryption keys, and every owner's data key wrapped by them
    in a key store of the provider's own (never the exchange's database, so that a
    database backup holds ciphertext only). The embedded provider is a key file and an
    SQLite key store in the key directory; a KMS adapter keeps both in the KMS.

    Destroying a data key is erasure: the provider keeps nothing that opens it again, and
    states how long, if at all, it retains a retired wrapped key (the embedded one: not
    at all)."""

    @property
    def primary_key_id(self) -> str: ...

    @property
    def key_ids(self) -> list[str]: ...

    def data_key(self, context: bytes) -> bytes | None:
        """The data key kept under ``context`` (the owner's wrap context), or None if
        there is none: never made, or destroyed. ``KeyUnavailable`` if it cannot be
        opened."""
        ...

    def create_data_key(self, context: bytes) -> bytes:
        """Make a data key for ``context``, durable before it is returned; if another
        process made one first, return that one."""
        ...

    def destroy_data_key(self, context: bytes) -> bool:
        """Destroy the data key of ``context`` for good; whether there was one."""
        ...

    def destroyed(self) -> int:
        """A count that grows with every destroyed data key (across processes), so that a
        process drops the data keys it holds in memory after another one erased."""
        ...

    def data_key_count(self, *, not_under: str | None = None) -> int:
        """How many data keys are kept (those not wrapped under ``not_under``)."""
        ...

    def rotate(self) -> str:
        """Make a new key-encryption key primary; returns its id."""
        ...

    def rewrap_data_keys(self, limit: int) -> int:
        """Re-wrap up to ``limit`` data keys not under the primary key under it; how many
        (0: none is left)."""
        ...

    def retire(self, key_id: str) -> None:
        """Destroy a key-encryption key; ``ValueError`` if it is the primary or still
        wraps a data key."""
        ...

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for one purpose (blind indexes, pseudonyms), derived by HKDF."""
        ...

    # The exchange's signing keys, kept in custody with the rest (an HSM adapter returns
    # objects of the same interfaces that sign inside the module).
    def audit_signing_key(self) -> Ed25519PrivateKey:
        """Signs the audit ledger's checkpoints and consent receipts."""
        ...

    def token_signing_key(self) -> EllipticCurvePrivateKey:
        """Signs access tokens."""
        ...


class DecisionPoint(Protocol):
    """Evaluates the policies in ``policies/``; raises ``PolicyUnavailable`` when it cannot."""

    @property
    def revision(self) -> str: ...

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]: ...
