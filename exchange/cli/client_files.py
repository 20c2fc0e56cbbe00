"""A backend client's own files, as ``exchange token`` reads them.

For a client ``<id>`` the data directory's ``clients/`` folder holds ``<id>.json``: the
client id, the key's algorithm and kid, the token URL and FHIR base it was made for, and
``private_key``, the key file's name in that folder (or its absolute path when written
elsewhere). The private key is PKCS#8 PEM, mode 0600, never overwritten. The exchange
itself keeps only the public JWK, in its client registry.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.config import Settings
from exchange.identity.assertion import generate_key


class ClientFileError(Exception):
    """A client's file is missing or unreadable; the message says which and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ClientFile:
    client_id: str
    alg: str
    kid: str
    token_url: str
    fhir_base: str
    private_key: Path
    path: Path


def clients_dir(settings: Settings) -> Path:
    return settings.data_dir / "clients"


def write_client(settings: Settings, client_id: str, alg: str, purposes: list[str],
                 scopes: str, key_out: Path | None = None,
                 replace: bool = False) -> tuple[ClientFile, dict[str, Any]]:
    """Make a key pair for a client: the private key into ``key_out`` (default
    ``clients/<id>.pem``) and the client's file beside it; returns them and the public JWK
    to register. ``replace`` lets the demo re-make its own clients' files."""
    folder = clients_dir(settings)
    key_path = key_out or folder / f"{client_id}.pem"
    info_path = folder / f"{client_id}.json"
    if not replace:
        for existing in (key_path, info_path):
            if existing.exists():
                raise ClientFileError(f"{existing} exists already; it is never overwritten")
    if not key_path.parent.is_dir() and key_out is not None:
        raise ClientFileError(f"no directory {key_path.parent} for the key")
    pem, jwk = generate_key(alg, f"{client_id}-1")
    folder.mkdir(mode=0o700, exist_ok=True)
    if replace:
        key_path.unlink(missing_ok=True)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ClientFileError(f"cannot write {key_path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    named = key_path.name if key_path.parent.resolve() == folder.resolve() \
        else str(key_path.resolve())
    info_path.write_text(json.dumps({
        "client_id": client_id, "alg": alg, "kid": jwk["kid"],
        "token_url": settings.token_url, "fhir_base": settings.fhir_base,
        "purposes": purposes, "scopes": scopes, "private_key": named}, indent=2))
    return read_client(settings, client_id), jwk


def remove_client(client: ClientFile) -> None:
    """Undo ``write_client`` (its registration failed)."""
    client.private_key.unlink(missing_ok=True)
    client.path.unlink(missing_ok=True)


def read_client(settings: Settings, client_id: str) -> ClientFile:
    folder = clients_dir(settings)
    path = folder / f"{client_id}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        raise ClientFileError(
            f"no client file for {client_id!r} in {folder}"
            + (f" (there are: {', '.join(known)})" if known else "")
            + "; `exchange clients add ID --generate-key` makes one")
    try:
        info = json.loads(path.read_text())
        return ClientFile(str(info["client_id"]), str(info["alg"]), str(info["kid"]),
                          str(info["token_url"]), str(info["fhir_base"]),
                          folder / str(info["private_key"]), path)
    except (OSError, ValueError, KeyError, TypeError):
        raise ClientFileError(f"{path} is not a readable client file") from None


def readdress(settings: Settings) -> list[str]:
    """Point every client file at this exchange's token URL and FHIR base (the demo
    served again at another address); returns the clients whose files changed."""
    changed = []
    folder = clients_dir(settings)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(info, dict):
            continue
        if (info.get("token_url"), info.get("fhir_base")) != (settings.token_url,
                                                              settings.fhir_base):
            info.update(token_url=settings.token_url, fhir_base=settings.fhir_base)
            path.write_text(json.dumps(info, indent=2))
            changed.append(path.stem)
    return changed
