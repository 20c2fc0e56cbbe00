"""Ports: the small interfaces the exchange needs from the outside world.

Implementations are picked in ``exchange.app`` only (the composition root).
"""

from datetime import datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


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


class DecisionPoint(Protocol):
    """Evaluates the policies in ``policies/``; raises ``PolicyUnavailable`` when it cannot."""

    @property
    def revision(self) -> str: ...

    def decide(self, entry_point: str, policy_input: dict[str, Any]) -> dict[str, Any]: ...
