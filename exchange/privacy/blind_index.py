"""Blind indexes: searchable terms stored as keyed hashes, never as plaintext."""

import hashlib
import hmac
import unicodedata


class BlindIndex:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # The keyed state is set up once and copied per term: the same HMAC-SHA256, at
        # less than half the cost of keying it afresh for each of a resource's terms.
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def term(self, param: str, value: str) -> str:
        digest = self._keyed.copy()
        digest.update(f"{param}\x00{value}".encode())
        return digest.hexdigest()[:32]


def normalize_text(value: str) -> str:
    """FHIR string search is case- and accent-insensitive."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
