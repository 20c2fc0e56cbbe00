"""A resource's codes as the labelling policy (and search subsumption) reads them.

The labels withhold a diagnosis of depression or HIV from readers without consent for it,
so a code must be found however a writer spelled it. Found by an attacker: ``F32.9`` under
``https://HL7.org/fhir/sid/ICD-10 ``, ``F 32.9``, ``F‐32.9`` (a Unicode dash), ``F32.9``
with a zero-width space, ``В20`` (a Cyrillic Ve), ``F٣2.9`` (an Arabic-Indic three), a code
in ``meta.tag`` or carried only by a primitive's extension were all stored unlabelled.

Here is the spelling; which systems are the same system, and which codes are sensitive, is
the policy's (``policies/exchange/labels``). Reading two spellings as one only ever adds a
label, which withholds more: the safe side.
"""

import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from confusable_homoglyphs import confusables

# Where a resource's codes are not clinical content: its narrative, and its meta, whose
# security labels labelling writes (a writer's own label there stands as it is) and whose
# profiles and versions are not codes. Its tags are walked like clinical content: a code
# is a code wherever it is written.
UNCODED_ELEMENTS = frozenset({"meta", "text"})

# A dash is a dash: U+2010 to U+2015, the minus sign, the full-width and small hyphen. And
# ICD-10's dagger (an etiology code, ``A17.0†``) is written ``+`` in plain text.
_FOLDED = {**{ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63"},
           ord("\u2020"): "+"}
# Invisible (format, combining, enclosing) and blank characters are not part of a code.
_DROPPED = frozenset({"Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Cc"})


# Codes and systems repeat (every heart rate is LOINC 8867-4): each spelling is read once.
# The labels' own cache (decide.py) holds the same codes, bounded alike.
@lru_cache(maxsize=8192)
def canonical_code(code: str) -> str:
    """The code as the labels compare it: compatibility forms folded (``Ｆ`` is ``F``),
    digits of any script read as digits, dashes as ``-``, invisible characters and blanks
    dropped, a letter that looks Latin read as the Latin letter it looks like, upper case."""
    # Decomposed (NFKD), not composed: Z with a combining accent would compose to Ź.
    text = unicodedata.normalize("NFKD", code).translate(_FOLDED)
    if text.isascii():
        return "".join(text.split()).upper()
    out: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in _DROPPED:
            continue
        if category == "Nd":
            out.append(str(unicodedata.digit(char)))
        elif char.isascii():
            out.append(char)
        else:
            out.append(_latin_lookalike(char))
    return "".join(out).upper()


def _latin_lookalike(char: str) -> str:
    """The ASCII letter or digit a character is confusable with (Unicode's confusables
    table, TR39), or the character itself when it looks like none."""
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    for entry in found or []:
        for glyph in entry["homoglyphs"]:
            if len(glyph["c"]) == 1 and glyph["c"].isascii() and glyph["c"].isalnum():
                return str(glyph["c"])
    return char


@lru_cache(maxsize=1024)
def canonical_system(system: str) -> str:
    """The system as the labels compare it: trimmed, in lower case, ``https`` read as
    ``http``, without ``www.``, a query, a fragment or trailing slashes. A system's name is
    case-sensitive in FHIR; here two names that differ only so are the same system."""
    text = "".join(c for c in unicodedata.normalize("NFKC", system)
                   if unicodedata.category(c) not in _DROPPED).lower()
    text = text.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if text.startswith("https://"):
        text = "http://" + text[len("https://"):]
    if text.startswith("http://www."):
        text = "http://" + text[len("http://www."):]
    return text


def codings(resource: dict[str, Any]) -> Iterator[dict[str, str]]:
    """Every code in a resource, wherever its type keeps them: a psychiatric practice
    setting on a DocumentReference labels it as surely as a diagnosis code on a Condition.
    A code without a system comes with system ``""``: the policy reads it as any system
    whose codes it looks like."""
    found: list[dict[str, str]] = []
    for element, value in resource.items():
        if element not in UNCODED_ELEMENTS:
            _walk(value, found)
    meta = resource.get("meta")
    if isinstance(meta, dict):
        _walk(meta.get("tag"), found)
    return iter(found)


def _walk(node: Any, found: list[dict[str, str]]) -> None:
    # Into lists and objects only, and by appending: a record has thousands of leaves, and
    # a generator per leaf made this the costliest step of a write.
    if isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _walk(item, found)
        return
    if not isinstance(node, dict):
        return
    code = node.get("code")
    if isinstance(code, str) and "_code" not in node and "_system" not in node:
        if code.strip():  # the common case, one code and its system, read directly
            system = node.get("system")
            found.append({"system": canonical_system(system if isinstance(system, str)
                                                     else ""),
                          "code": canonical_code(code)})
    elif code is not None or "_code" in node:
        codes = _strings(code, node.get("_code"))
        if codes:
            systems = _strings(node.get("system"), node.get("_system")) or [""]
            found.extend({"system": canonical_system(system), "code": canonical_code(code)}
                         for system in systems for code in codes)
    for key, value in node.items():
        if isinstance(value, (dict, list)) and key not in ("_code", "_system"):
            _walk(value, found)


def _strings(value: Any, extended: Any) -> list[str]:
    """A primitive's value and any text its extensions carry for it: a code written only
    in an extension of ``_code`` is still read as the code by whoever reads the record."""
    found = [value] if isinstance(value, str) and value.strip() else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if key.startswith("value") and isinstance(item, str) and item.strip():
                    found.append(item)
                else:
                    walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(extended)
    return found
