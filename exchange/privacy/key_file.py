"""The embedded key provider: a local key file, created on first run with mode 0600.

File format (JSON)::

    {"format": 1, "primary": "kek-2", "keks": {"kek-1": "<base64 32 bytes>", ...},
     "root": "<base64 32 bytes>", "forgotten": ["<sha256 hex of a wrap context>", ...]}

Key-encryption keys wrap residents' data keys with AES-256-GCM (associated data: the wrap
context). ``root`` feeds HKDF for per-purpose secrets. ``forgotten`` lists (by hash) the
wrap contexts of erased residents: their data keys are never unwrapped again, from this
database or from any copy of it. Rotation adds a KEK and makes it primary; retiring
removes an old one once no data key is wrapped under it, which also makes every older
backup's wrapped keys unopenable. Every change rewrites the file atomically (mode 0600).
A KMS adapter replaces this class behind the same ``KeyProvider`` port.
"""

import base64
import hashlib
import json
import os
import secrets
import stat
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.errors import KeyUnavailable


class LocalKeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if not path.exists():
                self._create(path)
        except OSError:
            raise KeyUnavailable("The key file could not be created.") from None
        self._load()

    def _load(self) -> None:
        """Read the file (again, after another process rotated or erased)."""
        try:
            if stat.S_IMODE(self.path.stat().st_mode) & 0o077:
                raise KeyUnavailable("The key file is readable by others; refusing to use it.")
            raw = json.loads(self.path.read_text())
            keks = {kid: base64.b64decode(v) for kid, v in raw["keks"].items()}
            primary = str(raw["primary"])
            root = base64.b64decode(raw["root"])
            forgotten = set(raw.get("forgotten", []))
        except KeyUnavailable:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise KeyUnavailable("The key file could not be read.") from None
        if primary not in keks or any(len(k) != 32 for k in keks.values()) or len(root) != 32:
            raise KeyUnavailable("The key file is malformed.")
        with self._lock:
            self._keks, self._primary, self._root = keks, primary, root
            self._forgotten = forgotten

    @staticmethod
    def _create(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        content = json.dumps({
            "format": 1, "primary": "kek-1",
            "keks": {"kek-1": base64.b64encode(secrets.token_bytes(32)).decode()},
            "root": base64.b64encode(secrets.token_bytes(32)).decode(),
        })
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)

    def _save(self) -> None:
        content = json.dumps({
            "format": 1, "primary": self._primary,
            "keks": {kid: base64.b64encode(k).decode() for kid, k in self._keks.items()},
            "root": base64.b64encode(self._root).decode(),
            "forgotten": sorted(self._forgotten),
        })
        tmp = self.path.with_name(self.path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keks)

    def rotate(self) -> str:
        """A new key-encryption key becomes primary; the old ones still unwrap."""
        with self._lock:
            number = 1 + max(int(k.rsplit("-", 1)[-1]) for k in self._keks
                             if k.rsplit("-", 1)[-1].isdigit())
            kid = f"kek-{number}"
            self._keks[kid] = secrets.token_bytes(32)
            self._primary = kid
            self._save()
            return kid

    def retire(self, key_id: str) -> None:
        """Destroy an old key-encryption key (the caller has re-wrapped what it wrapped)."""
        with self._lock:
            if key_id == self._primary:
                raise ValueError("the primary key cannot be retired")
            if self._keks.pop(key_id, None) is not None:
                self._save()

    def forget(self, context: bytes) -> None:
        """Never unwrap a data key under this context again (crypto-shredding)."""
        with self._lock:
            self._forgotten.add(hashlib.sha256(context).hexdigest())
            self._save()

    def forgotten(self, context: bytes) -> bool:
        return hashlib.sha256(context).hexdigest() in self._forgotten

    @property
    def primary_key_id(self) -> str:
        return self._primary

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        if self.forgotten(context):
            raise KeyUnavailable("This owner's records were erased.")
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._keks[self._primary]).encrypt(nonce, data_key, context)
        return self._primary, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        kek = self._keks.get(key_id)
        if kek is None:
            self._load()  # another process may have rotated since this one started
            kek = self._keks.get(key_id)
        if kek is None or self.forgotten(context):
            raise KeyUnavailable()
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], context)
        except (InvalidTag, ValueError):
            raise KeyUnavailable() from None

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"exchange/" + purpose.encode()).derive(self._root)
