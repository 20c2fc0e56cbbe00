"""Blind indexes: searchable terms stored as keyed hashes, never as plaintext.

A term of a resident's record is keyed under that resident's own key (``owned``), derived
from the index secret: the same code, name or label gives a different term in every
record, so that counting terms across the table tells nothing of who shares one. Only
the directory (records of no resident) keeps terms keyed once for the whole community.
"""

import hashlib
import hmac
import unicodedata
from functools import lru_cache

TERMS_CACHED = 65_536  # about 10 MB of terms and their blinded forms


class BlindIndex:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        # A record's terms repeat (every heart rate has LOINC 8867-4, every Observation a
        # status): each is keyed once, then looked up, at a tenth of the cost.
        self._cached = lru_cache(maxsize=TERMS_CACHED)(self._term)
        self._owned = lru_cache(maxsize=TERMS_CACHED)(self._owned_term)
        self._resident_key = lru_cache(maxsize=TERMS_CACHED)(self._derive)

    def term(self, param: str, value: str) -> str:
        """The blinded term of ``value`` under index key ``param``, the community's."""
        return self._cached(param, value)

    def owned(self, owner: str | None, param: str, value: str) -> str:
        """The blinded term of ``value`` under ``param`` in ``owner``'s record: keyed by
        that resident's key; the community's term for the directory (``None``)."""
        return self._cached(param, value) if owner is None else self._owned(owner, param,
                                                                            value)

    def fillers(self, owner: str | None, param: str, record: str, count: int) -> list[str]:
        """Terms that stand in for no value: the first ``count`` of ``record``
        (``Type/id``) under index key ``param``, keyed like ``owned`` (the resident's key;
        the community's for the directory), of the same length and alphabet as every
        term. One keyed digest of the record, stretched by SHAKE-256 into as many terms
        as asked (slot ``i`` is the same whatever the count): a fifth of the cost of a
        digest per slot. Its input begins with a NUL, as no index key does (an owned or
        community term's input begins with its key), and is told from a resident key's
        by its label: no value of any key ever blinds to one. Not cached: each is its
        record's alone."""
        key = self._secret if owner is None else self._resident_key(owner)
        seed = hmac.digest(key, f"\x00filler\x00{param}\x00{record}".encode(), "sha256")
        stream = hashlib.shake_256(seed).hexdigest(16 * count)
        return [stream[i:i + 32] for i in range(0, 32 * count, 32)]

    def _derive(self, owner: str) -> bytes:
        # A key of its own per resident: its input begins with a NUL, as no index key
        # does, so no community term is ever a resident's key
        return hmac.digest(self._secret, b"\x00owner\x00" + owner.encode(), "sha256")

    def _owned_term(self, owner: str, param: str, value: str) -> str:
        return hmac.digest(self._resident_key(owner), f"{param}\x00{value}".encode(),
                           "sha256")[:16].hex()

    def _term(self, param: str, value: str) -> str:
        # OpenSSL's one-shot HMAC-SHA256: a third cheaper than copying a keyed state
        # (which was itself half the cost of keying afresh in Python's hmac module)
        return hmac.digest(self._secret, f"{param}\x00{value}".encode(), "sha256")[:16].hex()


def normalize_text(value: str) -> str:
    """FHIR string search is case- and accent-insensitive."""
    folded = value.casefold()
    if folded.isascii():  # nothing to decompose: most codes' displays, and it is 10x faster
        return folded.strip()
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
