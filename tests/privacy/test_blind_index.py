"""Blind index terms: keyed HMAC-SHA256 (a resident's under a key of their own), and the
text normalization that search shares."""

import hashlib
import hmac
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from exchange.privacy.blind_index import BlindIndex, normalize_text


@given(st.text())
def test_normalization_is_case_and_accent_insensitive_on_every_text(text: str) -> None:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    slow = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()
    assert normalize_text(text) == slow


def test_normalization_folds_case_and_accents() -> None:
    assert normalize_text(" Zoë STRASSE ") == normalize_text("zoe strasse")
    assert normalize_text("Straße") == "strasse"


TEXT = st.text(st.characters(blacklist_categories=("Cs",)))  # no lone surrogates in JSON


@given(st.binary(min_size=32, max_size=32), TEXT, TEXT)
def test_a_term_is_the_keyed_hmac_of_its_key_and_value(secret: bytes, key: str,
                                                       value: str) -> None:
    expected = hmac.new(secret, f"{key}\x00{value}".encode(), hashlib.sha256).hexdigest()
    assert BlindIndex(secret).term(key, value) == expected[:32]


def test_terms_differ_by_key_and_by_secret() -> None:
    a, b = BlindIndex(b"a" * 32), BlindIndex(b"b" * 32)
    assert a.term("code", "x") != a.term("combo-code", "x")
    assert a.term("code", "x") != b.term("code", "x")


@given(st.binary(min_size=32, max_size=32), TEXT, TEXT, TEXT)
def test_a_residents_term_is_keyed_by_a_key_of_their_own(secret: bytes, owner: str,
                                                          key: str, value: str) -> None:
    own = hmac.new(secret, b"\x00owner\x00" + owner.encode(), hashlib.sha256).digest()
    expected = hmac.new(own, f"{key}\x00{value}".encode(), hashlib.sha256).hexdigest()
    assert BlindIndex(secret).owned(owner, key, value) == expected[:32]


def test_the_same_term_reads_differently_in_every_record() -> None:
    """Counting a code's terms across the index tells nothing of who shares it: each
    resident's record holds it under their own key; only the directory's is the
    community's."""
    blind = BlindIndex(b"k" * 32)
    code = "http://hl7.org/fhir/sid/icd-10|F32.9"
    terms = {blind.owned(f"resident-{i}", "code", code) for i in range(1000)}
    assert len(terms) == 1000
    assert blind.term("code", code) not in terms
    assert blind.owned(None, "code", code) == blind.term("code", code)
    assert blind.owned("a", "code", code) != BlindIndex(b"j" * 32).owned("a", "code", code)
