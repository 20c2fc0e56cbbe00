"""Envelope encryption of stored records.

Every owner (a resident, or ``_directory`` / ``_audit`` for records that belong to no
resident) has a 256-bit data key, kept by the key provider: wrapped by its key-encryption
key in its key store (the embedded one is a file of the key directory, see
``exchange.privacy.key_file``), never in the database. A database and its backups hold
ciphertext only; erasing a resident destroys their data key in the key store, after which
nothing that remains opens their rows in any copy.

Ciphertext format, version 2 (what ``seal`` writes)::

    0x02 | nonce (12 bytes) | AES-256-GCM(data key, nonce, padded plaintext, 0x02 | aad)

    aad = "exchange/v1" 0x00 owner 0x00 part 0x00 part ...
    padded = plaintext | 0x80 | 0x00 ... up to a multiple of PAD_BYTES

The padding (ISO/IEC 7816-4) hides a record's exact length: unpadded, a Condition's
ciphertext is as long as its plaintext, and the length of a depression code's display
told its holders apart (18 of 18 on the demo) to anyone with a copy of the database.
Version 1 (``0x01``, the same without padding or the version in the associated data)
is still opened, so existing stores need no rewrite.

For resources the parts are type, id and version, so a ciphertext moved to another row,
resident or version fails to open. Every failure to open is the same ``KeyUnavailable``.

A data key is durable in the key store before anything is sealed under it: a database
write that rolls back leaves at most an orphan key, which opens nothing.
"""

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Engine

from exchange.errors import KeyUnavailable
from exchange.ports import KeyProvider
from exchange.privacy.legacy_keys import Adoption, adopt_database_keys

FORMAT_V1 = b"\x01"
FORMAT_V2 = b"\x02"
PAD_BYTES = 256  # records are stored in lengths of this granularity
REFERENCE_INFO = b"exchange/v1/ledger-reference"


def pad(plaintext: bytes) -> bytes:
    """``plaintext``, 0x80, then zeros up to the next multiple of ``PAD_BYTES``."""
    length = len(plaintext) + 1
    return plaintext + b"\x80" + bytes(-length % PAD_BYTES)


def unpad(padded: bytes) -> bytes:
    stripped = padded.rstrip(b"\x00")
    if not stripped.endswith(b"\x80"):
        raise ValueError("not padded")
    return stripped[:-1]


def associated_data(owner: str, parts: Sequence[str]) -> bytes:
    return b"\x00".join([b"exchange/v1", owner.encode(), *(p.encode() for p in parts)])


@dataclass(frozen=True)
class _DataKey:
    aead: AESGCM
    reference: str  # the owner's ledger reference (see Vault.resident_reference)


class Vault:
    # How often a process asks whether another one destroyed a data key it holds in
    # memory (an erasure at the command line beside a serving exchange).
    FORGET_SECONDS = 1.0

    def __init__(self, engine: Engine, provider: KeyProvider,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``engine`` is the exchange's database: data keys an older exchange kept there
        are moved into the key provider first (``exchange.privacy.legacy_keys``)."""
        self._provider = provider
        self._keys: dict[str, _DataKey] = {}
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self.adoption: Adoption | None = adopt_database_keys(engine, provider)
        self._destroyed = provider.destroyed()
        self._checked = monotonic()

    def seal(self, owner: str, parts: Sequence[str], plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        aead = self._data_key(owner, create=True).aead
        return FORMAT_V2 + nonce + aead.encrypt(
            nonce, pad(plaintext), FORMAT_V2 + associated_data(owner, parts))

    def open(self, owner: str, parts: Sequence[str], blob: bytes) -> bytes:
        version = blob[:1]
        if version not in (FORMAT_V1, FORMAT_V2) or len(blob) < 29:
            raise KeyUnavailable()
        aead = self._data_key(owner, create=False).aead
        aad = associated_data(owner, parts)
        try:
            if version == FORMAT_V1:
                return aead.decrypt(blob[1:13], blob[13:], aad)
            return unpad(aead.decrypt(blob[1:13], blob[13:], FORMAT_V2 + aad))
        except (InvalidTag, ValueError):
            raise KeyUnavailable() from None

    @staticmethod
    def context(owner: str) -> bytes:
        return b"data-key/" + owner.encode()

    def destroy(self, owner: str) -> None:
        """Crypto-shredding: the owner's data key is destroyed in the key store (nothing
        is kept that opens their records, in this database or any copy) and forgotten
        here; other processes forget it within ``FORGET_SECONDS``."""
        with self._lock:
            self._keys.pop(owner, None)
        self._provider.destroy_data_key(self.context(owner))
        with self._lock:
            self._keys.pop(owner, None)  # a read that raced the destruction

    def ensure_key(self, owner: str) -> None:
        self._data_key(owner, create=True)

    def resident_reference(self, resident: str) -> str | None:
        """How the ledger's records of a request refer to a resident it named: a keyed
        pseudonym (64 bits, hex) derived from the resident's own data key, stable for as
        long as they exist. Erasure destroys that key, after which nobody, with whatever
        remains, can tell which id a reference was. None when ``resident`` has no data
        key (no such resident, or an erased one)."""
        if not resident or resident.startswith("_"):  # the directory's and the ledger's
            return None
        try:
            return self._data_key(resident, create=False).reference
        except KeyUnavailable:
            return None

    def _data_key(self, owner: str, *, create: bool) -> _DataKey:
        self._forget_destroyed()
        cached = self._keys.get(owner)
        if cached is not None:
            return cached
        context = self.context(owner)
        key = self._provider.data_key(context)
        if key is None:
            if not create:
                raise KeyUnavailable()
            key = self._provider.create_data_key(context)
        found = _DataKey(AESGCM(key), _reference(key))
        with self._lock:
            return self._keys.setdefault(owner, found)

    def _forget_destroyed(self) -> None:
        """Drop the keys held in memory once another process destroyed any data key."""
        now = self._monotonic()
        if now - self._checked < self.FORGET_SECONDS:
            return
        self._checked = now
        destroyed = self._provider.destroyed()
        if destroyed != self._destroyed:
            with self._lock:
                self._keys.clear()
                self._destroyed = destroyed


def _reference(data_key: bytes) -> str:
    return HKDF(algorithm=hashes.SHA256(), length=8, salt=None,
                info=REFERENCE_INFO).derive(data_key).hex()
