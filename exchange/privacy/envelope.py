"""Envelope encryption of stored records.

Every owner (a resident, or ``_directory`` / ``_audit`` for records that belong to no
resident) has a 256-bit data key, stored wrapped by the key provider's key-encryption key.

Ciphertext format, version 1::

    0x01 | nonce (12 bytes) | AES-256-GCM(data key, nonce, plaintext, aad)

    aad = "exchange/v1" 0x00 owner 0x00 part 0x00 part ...

For resources the parts are type, id and version, so a ciphertext moved to another row,
resident or version fails to open. Every failure to open is the same ``KeyUnavailable``.
"""

import secrets
import threading
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from exchange.errors import KeyUnavailable
from exchange.ports import KeyProvider
from exchange.store.tables import DataKeyRow
from exchange.store.units import current_unit, reading, writing

K = DataKeyRow.__table__.c  # type: ignore[attr-defined]

FORMAT_V1 = b"\x01"


def associated_data(owner: str, parts: Sequence[str]) -> bytes:
    return b"\x00".join([b"exchange/v1", owner.encode(), *(p.encode() for p in parts)])


class Vault:
    def __init__(self, engine: Engine, provider: KeyProvider) -> None:
        self._engine = engine
        self._provider = provider
        self._keys: dict[str, AESGCM] = {}
        self._lock = threading.Lock()

    def seal(self, owner: str, parts: Sequence[str], plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        aead = self._data_key(owner, create=True)
        return FORMAT_V1 + nonce + aead.encrypt(nonce, plaintext, associated_data(owner, parts))

    def open(self, owner: str, parts: Sequence[str], blob: bytes) -> bytes:
        if blob[:1] != FORMAT_V1 or len(blob) < 29:
            raise KeyUnavailable()
        aead = self._data_key(owner, create=False)
        try:
            return aead.decrypt(blob[1:13], blob[13:], associated_data(owner, parts))
        except InvalidTag:
            raise KeyUnavailable() from None

    @staticmethod
    def context(owner: str) -> bytes:
        return b"data-key/" + owner.encode()

    def destroy(self, owner: str) -> None:
        """Crypto-shredding: delete the owner's wrapped data key, forget it in memory, and
        have the key provider refuse it from now on, for this database and its copies."""
        self._provider.forget(self.context(owner))
        with self._lock:
            self._keys.pop(owner, None)
            try:
                with Session(self._engine) as session:
                    row = session.get(DataKeyRow, owner)
                    if row is not None:
                        session.delete(row)
                        session.commit()
            except SQLAlchemyError:
                raise KeyUnavailable() from None

    def ensure_key(self, owner: str) -> None:
        self._data_key(owner, create=True)

    def _data_key(self, owner: str, *, create: bool) -> AESGCM:
        cached = self._keys.get(owner)
        if cached is not None:
            return cached
        unit = current_unit(self._engine)
        if unit is not None:
            staged = unit.staged.get(("data-key", owner))
            if staged is not None:
                return staged  # type: ignore[no-any-return]
        context = self.context(owner)
        try:
            with reading(self._engine) as conn:
                row = conn.execute(select(K.key_id, K.wrapped).where(K.owner == owner)).first()
            if row is None:
                if not create:
                    raise KeyUnavailable()
                return self._create(owner, context)
            aead = AESGCM(self._provider.unwrap(row[0], row[1], context))
        except SQLAlchemyError:
            raise KeyUnavailable() from None
        return self._remember(owner, aead)

    def _create(self, owner: str, context: bytes) -> AESGCM:
        """A new data key, committed with the operation that first seals under it (inside
        an operation's unit of work) or on its own: a key that rolls back is never used,
        and data sealed under it rolls back with it."""
        key = AESGCM.generate_key(bit_length=256)
        key_id, wrapped = self._provider.wrap(key, context)
        aead = AESGCM(key)
        try:
            with writing(self._engine) as conn:
                conn.execute(insert(DataKeyRow.__table__),  # type: ignore[attr-defined]
                             {"owner": owner, "key_id": key_id, "wrapped": wrapped})
        except IntegrityError:
            # Another process created it first; use theirs.
            with reading(self._engine) as conn:
                row = conn.execute(select(K.key_id, K.wrapped).where(K.owner == owner)).one()
            return self._remember(owner, AESGCM(self._provider.unwrap(row[0], row[1],
                                                                      context)))
        unit = current_unit(self._engine)
        if unit is None:
            return self._remember(owner, aead)
        unit.staged[("data-key", owner)] = aead
        unit.after_commit(lambda: self._remember(owner, aead))
        return aead

    def _remember(self, owner: str, aead: AESGCM) -> AESGCM:
        with self._lock:
            return self._keys.setdefault(owner, aead)
