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

The file lives in the key directory, apart from the data directory (a copy of the data
is no copy of its keys), with the exchange's two signing keys: the audit ledger's
(Ed25519, checkpoints and receipts) and the token service's (EC P-256). The directory is
0700 and every file 0600; a key readable by others is refused. A KMS or HSM adapter
replaces this class behind the same ``KeyProvider`` port.
"""

import base64
import hashlib
import json
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.errors import KeyUnavailable

AUDIT_SIGNING_KEY = "audit-signing-key.pem"
TOKEN_SIGNING_KEY = "token-signing-key.pem"  # noqa: S105 (a file name)


class LocalKeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if not path.parent.exists():
                os.makedirs(path.parent, mode=0o700)
            if not path.exists():
                self._create(path)
        except OSError:
            raise KeyUnavailable("The key file could not be created.") from None
        self._load()

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
        """Read the file (again, after another process rotated or erased)."""
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
