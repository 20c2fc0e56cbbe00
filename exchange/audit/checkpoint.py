"""Signed checkpoints of the audit ledger, as C2SP signed notes with Ed25519.

A checkpoint says: the log named ``origin`` had ``size`` entries with Merkle root ``root``.
Its text form::

    <origin>
    <size>
    <base64 root>

    — <origin> <base64(key id (4 bytes) | Ed25519 signature)>

The key id is the first four bytes of SHA-256(origin | "\\n" | 0x01 | public key), as the
signed-note format defines for Ed25519. Compliance officers keep exported checkpoints as
witnesses; a later ledger must still contain them.
"""

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class CheckpointError(Exception):
    """A checkpoint that is malformed or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> bytes:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n".encode()


def key_id(origin: str, public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> str:
    body = checkpoint.body()
    signature = key_id(checkpoint.origin, key.public_key()) + key.sign(body)
    return body.decode() + f"\n\u2014 {checkpoint.origin} " \
        f"{base64.b64encode(signature).decode()}\n"


def open_note(note: str, public: Ed25519PublicKey) -> Checkpoint:
    """Parse a signed checkpoint and verify its signature; ``CheckpointError`` otherwise."""
    try:
        body, _, signatures = note.partition("\n\n")
        origin, size_text, root_text = body.split("\n")
        checkpoint = Checkpoint(origin, int(size_text), base64.b64decode(root_text,
                                                                          validate=True))
        if checkpoint.size < 0 or len(checkpoint.root) != 32:
            raise ValueError
    except ValueError:
        raise CheckpointError("the checkpoint is malformed") from None
    expected = key_id(origin, public)
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014" or parts[1] != origin:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        if raw[:4] != expected:
            continue
        try:
            public.verify(raw[4:], checkpoint.body())
        except InvalidSignature:
            raise CheckpointError("the checkpoint's signature does not verify") from None
        return checkpoint
    raise CheckpointError("the checkpoint carries no signature by the exchange's key")


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
