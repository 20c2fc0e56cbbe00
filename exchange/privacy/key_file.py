"""The embedded key provider: a local key file, created on first run with mode 0600, and
the key store beside it that holds every owner's wrapped data key.

Key file format (JSON)::

    {"format": 2, "primary": "kek-2", "keks": {"kek-2": "<base64 32 bytes>", ...},
     "root": "<base64 32 bytes>"}

Key-encryption keys wrap owners' data keys with AES-256-GCM (associated data: the wrap
context); the wrapped keys live in the key store (``data-keys.db``,
``exchange.privacy.key_store``), never in the exchange's database, so a database backup
is ciphertext only. ``root`` feeds HKDF for per-purpose secrets. Rotation adds a KEK and
makes it primary; re-wrapping moves every data key under it; retiring removes an old KEK
once no data key is wrapped under it. Erasure destroys the owner's wrapped data key in
the key store: nothing is kept that opens their records, in this database or any copy.

Retention: the key store keeps no retired wrapped key (a re-wrapped key's old bytes and
an erased owner's key are overwritten as their transaction commits; see ``key_store``);
a retired KEK leaves the key file when ``retire`` returns. Every change of the key file
rewrites it atomically (mode 0600) while holding the key store's write lock, after
reading it again, so that processes sharing the key directory never undo each other's
rotations, and a process that wraps a new data key always wraps it under the current
primary.

Format 1 (an older exchange's): the data keys were kept wrapped in the database, and
erasure only added the context's hash to a ``"forgotten"`` deny-list. Opening such a key
directory makes the key store; the vault then moves the database's keys in
(``exchange.privacy.legacy_keys``) and ``settle_adoption`` re-wraps them under a new KEK
and retires every KEK of format 1, so that database backups taken before the move, whose
wrapped keys are under those KEKs, open no longer; the deny-list goes with them.

The file lives in the key directory, apart from the data directory (a copy of the data
is no copy of its keys), with the exchange's two signing keys: the audit ledger's
(Ed25519, checkpoints and receipts) and the token service's (EC P-256). The directory is
0700 and every file 0600; a key readable by others is refused. A KMS or HSM adapter
replaces this class, key store included, behind the same ``KeyProvider`` port.
"""

import base64
import hashlib
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.errors import KeyUnavailable
from exchange.privacy.key_store import SqliteKeyStore

AUDIT_SIGNING_KEY = "audit-signing-key.pem"
TOKEN_SIGNING_KEY = "token-signing-key.pem"  # noqa: S105 (a file name)
KEY_STORE = "data-keys.db"
FORMAT = 2


class LocalKeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        store_path = path.with_name(KEY_STORE)
        try:
            if not path.parent.exists():
                os.makedirs(path.parent, mode=0o700)
            if not path.exists():
                # The store first: a crash before the key file leaves an empty store,
                # which the next start takes; a store with keys but no key file is not.
                self._store = SqliteKeyStore(store_path, create=True)
                if self._store.count():
                    raise KeyUnavailable("The key store holds data keys but the key file "
                                         "is missing; refusing to make a new one.")
                self._create(path)
                self._load()
                return
        except OSError:
            raise KeyUnavailable("The key file could not be created.") from None
        self._load()
        # Format 1 kept the wrapped keys in the database: its store is made here, and
        # filled by the vault (legacy_keys). Format 2 without its store opens nothing.
        self._store = SqliteKeyStore(store_path, create=self._format < FORMAT)

    def audit_signing_key(self) -> Ed25519PrivateKey:
        key = self._signing_key(AUDIT_SIGNING_KEY, Ed25519PrivateKey.generate)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyUnavailable("The audit signing key is not an Ed25519 key.")
        return key

    def token_signing_key(self) -> ec.EllipticCurvePrivateKey:
        key = self._signing_key(TOKEN_SIGNING_KEY,
                                lambda: ec.generate_private_key(ec.SECP256R1()))
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyUnavailable("The token signing key is not an EC key.")
        return key

    def _signing_key(self, name: str, generate: Callable[[], Any]) -> Any:
        """The private key in ``name`` beside the key file, made (0600) on first use."""
        path = self.path.parent / name
        try:
            if not path.exists():
                pem = generate().private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption())
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                raise KeyUnavailable(f"The key {name} is readable by others; refusing to "
                                     "use it.")
            return serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            raise KeyUnavailable(f"The key {name} could not be read.") from None

    def _load(self) -> None:
        """Read the file (again, after another process rotated or retired)."""
        try:
            if stat.S_IMODE(self.path.stat().st_mode) & 0o077 or \
                    stat.S_IMODE(self.path.parent.stat().st_mode) & 0o077:
                raise KeyUnavailable("The key file or its directory is open to others; "
                                     "refusing to use it (chmod 700 the directory, 600 "
                                     "the files).")
            raw = json.loads(self.path.read_text())
            keks = {kid: base64.b64decode(v) for kid, v in raw["keks"].items()}
            primary = str(raw["primary"])
            root = base64.b64decode(raw["root"])
            version = int(raw.get("format", 1))
            forgotten = set(raw.get("forgotten", [])) if version < FORMAT else set()
        except KeyUnavailable:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyUnavailable("The key file could not be read.") from None
        if primary not in keks or any(len(k) != 32 for k in keks.values()) or \
                len(root) != 32 or version > FORMAT:
            raise KeyUnavailable("The key file is malformed.")
        with self._lock:
            self._keks, self._primary, self._root = keks, primary, root
            self._format, self._forgotten = version, forgotten

    @staticmethod
    def _create(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps({
            "format": FORMAT, "primary": "kek-1",
            "keks": {"kek-1": base64.b64encode(secrets.token_bytes(32)).decode()},
            "root": base64.b64encode(secrets.token_bytes(32)).decode(),
        })
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())

    def _save(self) -> None:
        """Rewrite the file atomically; the caller holds the store's write lock."""
        content: dict[str, Any] = {
            "format": self._format, "primary": self._primary,
            "keks": {kid: base64.b64encode(k).decode() for kid, k in self._keks.items()},
            "root": base64.b64encode(self._root).decode(),
        }
        if self._format < FORMAT:
            content["forgotten"] = sorted(self._forgotten)
        tmp = self.path.with_name(self.path.name + ".new")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(content))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError:
            raise KeyUnavailable("The key file could not be written.") from None

    # Key-encryption keys

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keks)

    @property
    def primary_key_id(self) -> str:
        return self._primary

    def rotate(self) -> str:
        """A new key-encryption key becomes primary; the old ones still unwrap."""
        with self._store.exclusive():
            self._load()
            kid = self._next_key_id()
            self._keks[kid] = secrets.token_bytes(32)
            self._primary = kid
            self._save()
            return kid

    def _next_key_id(self) -> str:
        numbers = [int(k.rsplit("-", 1)[-1]) for k in self._keks
                   if k.rsplit("-", 1)[-1].isdigit()]
        return f"kek-{1 + max(numbers, default=0)}"

    def retire(self, key_id: str) -> None:
        """Destroy an old key-encryption key; refused while a data key is wrapped under it
        (re-wrap first) or while it is the primary."""
        with self._store.exclusive():
            self._load()
            if key_id == self._primary:
                raise ValueError("the primary key cannot be retired")
            if self._store.count(under=key_id):
                raise ValueError(f"data keys are still wrapped under {key_id}")
            if self._keks.pop(key_id, None) is not None:
                self._save()

    def rewrap_data_keys(self, limit: int) -> int:
        """Re-wrap up to ``limit`` data keys that are not under the primary key, in one
        transaction (the old wrapped bytes are overwritten as it commits); how many."""
        with self._store.exclusive():
            self._load()
            rows = self._store.not_under(self._primary, limit)
            for context, key_id, wrapped in rows:
                key = self._unwrap(key_id, wrapped, context)
                self._store.replace(context, *self._wrap(key, context))
            return len(rows)

    def data_key_count(self, *, not_under: str | None = None) -> int:
        return self._store.count(not_under=not_under)

    # Data keys

    def data_key(self, context: bytes) -> bytes | None:
        """The data key kept under ``context``, or None if there is none (never made, or
        destroyed). A key that is stored but cannot be unwrapped is ``KeyUnavailable``."""
        found = self._store.get(context)
        if found is None:
            return None
        return self._unwrap(found[0], found[1], context)

    def create_data_key(self, context: bytes) -> bytes:
        """A new data key for ``context``, durable in the key store before it is returned;
        if another process stored one first, that one."""
        key = AESGCM.generate_key(bit_length=256)
        with self._store.exclusive():
            self._load()  # the current primary, never one another process retired
            if self._store.add(context, *self._wrap(key, context)):
                return key
            found = self._store.get(context)
        if found is None:
            raise KeyUnavailable()
        return self._unwrap(found[0], found[1], context)

    def create_data_keys(self, contexts: Iterable[bytes]) -> None:
        """Data keys for many owners in one transaction (a bulk load, the benchmark);
        those that exist are kept."""
        with self._store.exclusive():
            self._load()
            self._store.add_many((c, *self._wrap(AESGCM.generate_key(bit_length=256), c))
                                 for c in contexts)

    def destroy_data_key(self, context: bytes) -> bool:
        """Crypto-shredding: the wrapped data key of ``context`` is deleted from the key
        store, its bytes overwritten on disk; whether there was one."""
        return self._store.delete(context)

    def destroyed(self) -> int:
        return self._store.destroyed()

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        """A data key wrapped under one of these KEKs, from wherever it was kept."""
        return self._unwrap(key_id, wrapped, context)

    def _wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._keks[self._primary]).encrypt(nonce, data_key, context)
        return self._primary, nonce + sealed

    def _unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        kek = self._keks.get(key_id)
        if kek is None:
            self._load()  # another process may have rotated since this one read the file
            kek = self._keks.get(key_id)
        if kek is None:
            raise KeyUnavailable()
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], context)
        except (InvalidTag, ValueError):
            raise KeyUnavailable() from None

    # Moving in an older exchange's data keys (format 1; exchange.privacy.legacy_keys)

    @property
    def adoption_pending(self) -> bool:
        return self._format < FORMAT

    def adopt_data_keys(self, wrapped: Iterable[tuple[bytes, str, bytes]]) -> int:
        """Take in data keys an older exchange kept in its database, as (context, KEK id,
        wrapped bytes), in one transaction; how many the store holds of them. A key of an
        erased owner (on the format 1 deny-list), one already in the store, or one that no
        KEK here opens (a retired one's) is not taken."""
        taken = 0
        with self._store.exclusive():
            self._load()
            for context, key_id, blob in wrapped:
                if self._store.get(context) is not None:
                    taken += 1
                    continue
                if hashlib.sha256(context).hexdigest() in self._forgotten:
                    continue
                try:
                    key = self._unwrap(key_id, blob, context)
                except KeyUnavailable:
                    continue
                self._store.add(context, *self._wrap(key, context))
                taken += 1
        return taken

    def settle_adoption(self, seen: set[str]) -> list[str]:
        """After the database's data keys were moved in and dropped there: every KEK that
        wrapped keys a database (or its backups) held (all of format 1's, and those named
        in ``seen``) is replaced by a new primary and retired; returns the retired ids.

        Two steps, each its own transaction: the keys are re-wrapped (and committed)
        before the KEKs that wrapped them leave the key file. Interrupted, it is begun
        again at the next open (the file is still of format 1)."""
        with self._store.exclusive():
            self._load()
            exposed = set(self._keks) if self._format < FORMAT else seen & set(self._keks)
            if not exposed:
                return []
            if self._primary in exposed:
                kid = self._next_key_id()
                self._keks[kid] = secrets.token_bytes(32)
                self._primary = kid
                self._save()  # before any key is wrapped under it
            for old in sorted(exposed - {self._primary}):
                while rows := self._store.under(old, 10_000):
                    for context, key_id, blob in rows:
                        self._store.replace(context, *self._wrap(
                            self._unwrap(key_id, blob, context), context))
        with self._store.exclusive():
            self._load()
            retired = []
            for old in sorted(exposed - {self._primary}):
                if old in self._keks and not self._store.count(under=old):
                    del self._keks[old]
                    retired.append(old)
            self._format, self._forgotten = FORMAT, set()
            self._save()
            return retired

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"exchange/" + purpose.encode()).derive(self._root)

    def close(self) -> None:
        self._store.close()
