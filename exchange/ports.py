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
    """Holds key-encryption keys; data keys are wrapped and unwrapped here, never exported."""

    @property
    def primary_key_id(self) -> str: ...

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the primary key; returns (key id, wrapped bytes)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes: ...

    def derive(self, purpose: str) -> bytes:
        """A 32-byte secret for one purpose (blind indexes, pseudonyms), derived by HKDF."""
        ...

    @property
    def key_ids(self) -> list[str]: ...

    def rotate(self) -> str:
        """Make a new key-encryption key primary; returns its id."""
        ...

    def retire(self, key_id: str) -> None: ...

    def forget(self, context: bytes) -> None:
        """Refuse, from now on, to unwrap any data key wrapped under ``context``."""
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
