"""Blind indexes: searchable terms stored as keyed hashes, never as plaintext."""

import hashlib
import hmac
import unicodedata


class BlindIndex:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def term(self, param: str, value: str) -> str:
        digest = hmac.new(self._secret, f"{param}\x00{value}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]


def normalize_text(value: str) -> str:
    """FHIR string search is case- and accent-insensitive."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
