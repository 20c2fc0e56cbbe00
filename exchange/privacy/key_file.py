"""The embedded key provider: a local key file, created on first run with mode 0600.

File format (JSON)::

    {"format": 1, "primary": "kek-1", "keks": {"kek-1": "<base64 32 bytes>"},
     "root": "<base64 32 bytes>"}

Key-encryption keys wrap residents' data keys with AES-256-GCM (associated data: the wrap
context). ``root`` feeds HKDF for per-purpose secrets. A KMS adapter replaces this class
behind the same ``KeyProvider`` port.
"""

import base64
import json
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exchange.errors import KeyUnavailable


class LocalKeyFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if not path.exists():
                self._create(path)
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise KeyUnavailable("The key file is readable by others; refusing to use it.")
            raw = json.loads(path.read_text())
            self._keks = {kid: base64.b64decode(v) for kid, v in raw["keks"].items()}
            self._primary = str(raw["primary"])
            self._root = base64.b64decode(raw["root"])
        except KeyUnavailable:
            raise
        except (OSError, ValueError, KeyError, TypeError):
            raise KeyUnavailable("The key file could not be read.") from None
        if self._primary not in self._keks or any(len(k) != 32 for k in self._keks.values()) \
                or len(self._root) != 32:
            raise KeyUnavailable("The key file is malformed.")

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

    @property
    def primary_key_id(self) -> str:
        return self._primary

    def wrap(self, data_key: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._keks[self._primary]).encrypt(nonce, data_key, context)
        return self._primary, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        kek = self._keks.get(key_id)
        if kek is None:
            raise KeyUnavailable()
        try:
            return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], context)
        except (InvalidTag, ValueError):
            raise KeyUnavailable() from None

    def derive(self, purpose: str) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"exchange/" + purpose.encode()).derive(self._root)
