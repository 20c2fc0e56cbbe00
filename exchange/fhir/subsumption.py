"""Which codes a code subsumes, where the exchange knows it without a terminology server:
what ``:below`` (the code or any code it subsumes) and ``:above`` (the code or any code
that subsumes it) on a token search compare.

Two kinds of hierarchy are known:

* HL7's own is-a CodeSystems (``spec/code_hierarchies.json``, generated from HL7's R4
  package by ``spec/hierarchy_generation.py``; v3 ActCode, RoleCode, ActReason, ...). They
  are complete and small, so a search expands the code at query time into itself and its
  descendants (``:below``) or its ancestors (``:above``), each an exact ``system|code``
  term under the parameter's own index keys: nothing more is indexed, and an upgrade of
  the file needs no reindex. The system is the URL as HL7 writes it (a plain
  ``system|code`` search compares it so too); the code is compared exactly.
* ICD-10 and its editions (ICD-10-CM, the Chinese national edition, ...). Its hierarchy
  is the code's own structure (``icd10_ancestors`` says the rule), and the exchange has no
  list of every ICD-10 code, so ``:below`` cannot be expanded. Instead each ICD-10 code
  is indexed with its place in the hierarchy (``placed_terms``, under the parameter's
  ``:below`` key), which both modifiers ask (``subsumed``). The editions are one family:
  ``F32.9`` under ICD-10-CM is below ``F32`` asked under ICD-10, as the labels read them.

Systems and codes are spelled as the labels compare them (``exchange.fhir.codes``,
the one normalizer: case, ``https``, ``www.``, trailing slashes, invisible characters,
lookalike letters), and ICD-10's other names (its OIDs, WHO's URIs, the editions) are
those the labelling policy's ``code_system_aliases`` and ``code_system_patterns`` give
(a test holds the two to each other).

Anything else (LOINC, SNOMED CT, a code without a system, any other system) has no
hierarchy known here: ``subsumed`` raises ``NoHierarchy`` and the search is a 400.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import orjson

# The one normalizer of systems and codes, the labels' too.
from exchange.fhir.codes import canonical_code, canonical_system

DATA = "code_hierarchies.json"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
# ICD-10's other names, spelled as ``canonical_system`` spells them: the policy's aliases
# of ICD-10 (policies/exchange/static/data.json, ``code_system_aliases``).
ICD10_NAMES = frozenset({
    ICD10,
    "http://hl7.org/fhir/sid/icd-10-cm",
    "http://id.who.int/icd/release/10",
    "http://who.int/classifications/icd10",
    "urn:oid:2.16.840.1.113883.6.3",  # ICD-10
    "urn:oid:2.16.840.1.113883.6.90",  # ICD-10-CM
    "urn:oid:2.16.156.10011.2.3.3.11",  # the Chinese national edition
})
# And the names of its national editions (ICD-10-GM, -WHO, -CA, ...), as the policy's
# ``code_system_patterns`` read them; ICD-10-PCS names procedures, not diagnoses.
_ICD10_EDITION = re.compile(r"http://[a-z0-9.-]+(/[^/]+)*/icd-?10(-[a-z]{2,3})?\Z")
_NOT_ICD10 = re.compile(r".*pcs\Z")

# An ICD-10 code, read without its dot: a category (a letter, a digit, a digit or letter)
# and up to four more characters (WHO's subcategories have one, national editions two,
# ICD-10-CM up to four, its placeholder ``X`` among them).
CATEGORY, LONGEST = 3, 7
_ICD10_CODE = re.compile(rf"[A-Z][0-9][0-9A-Z][0-9A-Z]{{0,{LONGEST - CATEGORY}}}\Z")


class NoHierarchy(ValueError):
    """The exchange does not know the hierarchy of this system, or cannot place this code
    in it. Its message says which, and carries no code."""


@dataclass(frozen=True)
class Subsumed:
    """What ``:below`` or ``:above`` of one code searches: ``own``, exact ``system|code``
    terms under the parameter's own keys; ``placed``, terms under its ``:below`` key."""

    own: tuple[str, ...] = ()
    placed: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return len(self.own) + len(self.placed)


# -- ICD-10: the hierarchy is the code's structure -------------------------------------------
#
# The rule. A code is read as the labels spell it (upper case, no blanks or invisible
# characters), without a dagger or asterisk mark (``A17.0+``, ``G01*``: which axis a code
# is on, not another code) and without its dot, which must follow the category: ``F32.9``,
# ``f32.9`` and ``F329`` are one code. Its ancestors are its prefixes of three characters
# or more: ``F32.9`` is below ``F32``; ``S72.001A`` below ``S72.001``, ``S72.00``, ``S72.0``
# and ``S72``; a category (``F32``) is below nothing known here. Every code is written
# back with the dot after its category. Blocks (``F30-F39``) and chapters (``V``) are not
# codes of this form and are out of scope: such a value is refused, and is placed nowhere.
# (A prefix that is no code of an edition, ``T36.0X`` of ``T36.0X1A``, is harmless: no
# record holds it, and a search for it finds exactly what lies below it.)


@lru_cache(maxsize=8192)
def icd10_form(code: str) -> str | None:
    """The code as its place in ICD-10's hierarchy is written (``F32.9``), or None when it
    is no code of that form."""
    text = canonical_code(code).rstrip("+*")
    head, dot, tail = text.partition(".")
    if dot and (len(head) != CATEGORY or not tail):
        return None
    plain = head + tail
    if not _ICD10_CODE.match(plain):
        return None
    return _dotted(plain)


def icd10_ancestors(form: str) -> list[str]:
    """The codes above a code written as ``icd10_form`` writes it, the nearest last:
    ``S72.001A`` -> ``S72``, ``S72.0``, ``S72.00``, ``S72.001``."""
    plain = form.replace(".", "")
    return [_dotted(plain[:n]) for n in range(CATEGORY, len(plain))]


def _dotted(plain: str) -> str:
    return plain if len(plain) == CATEGORY else f"{plain[:CATEGORY]}.{plain[CATEGORY:]}"


@lru_cache(maxsize=1024)
def is_icd10(system: str) -> bool:
    """Whether ``system`` names ICD-10 or one of its editions, however it is spelled."""
    name = canonical_system(system)
    return name in ICD10_NAMES or (bool(_ICD10_EDITION.match(name))
                                   and not _NOT_ICD10.match(name))


# Every ICD-10 code is indexed as this many terms, whatever its depth (itself and up to
# four codes above it; fillers, which no search asks, make up the rest): a copy of the
# database, counting a record's rows, learns that it holds an ICD-10 code, not how deep
# (a category, a subcategory), as a padded ciphertext tells no code by its length.
PLACES = 1 + LONGEST - CATEGORY


def placed_terms(system: str | None, code: str) -> list[str]:
    """What the index holds, under a token parameter's ``:below`` key, of where one code
    sits: for an ICD-10 code itself (``=``) and each code above it (``<``), in the
    family's name, and fillers to ``PLACES`` (derived from the code, so two records
    share them exactly when they share the code, as their other terms tell already);
    nothing for a code of any other system, or of no system."""
    if not system or not is_icd10(system):
        return []
    form = icd10_form(code)
    if form is None:
        return []
    terms = [f"={ICD10}|{form}", *(f"<{ICD10}|{a}" for a in icd10_ancestors(form))]
    return terms + [f"~{ICD10}|{form}|{n}" for n in range(len(terms), PLACES)]


# -- HL7's is-a CodeSystems: expanded from the generated file -------------------------------


@dataclass(frozen=True)
class Hierarchy:
    url: str  # as HL7 writes it
    children: Mapping[str, tuple[str, ...]]
    parents: Mapping[str, tuple[str, ...]]

    def below(self, code: str) -> list[str]:
        """The code and every code it subsumes (a v3 code may have several parents)."""
        return _closure(code, self.children)

    def above(self, code: str) -> list[str]:
        """The code and every code that subsumes it."""
        return _closure(code, self.parents)


def _closure(code: str, edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    found = [code]
    seen = {code}
    for current in found:  # grows as it is walked: breadth first
        for following in edges.get(current, ()):
            if following not in seen:
                seen.add(following)
                found.append(following)
    return found


@cache
def hierarchies() -> dict[str, Hierarchy]:
    """The generated hierarchies, by the system's canonical spelling."""
    raw = resources.files("exchange.fhir.spec").joinpath(DATA).read_bytes()
    return {canonical_system(url): _hierarchy(url, children)
            for url, children in orjson.loads(raw)["systems"].items()}


def _hierarchy(url: str, children: Mapping[str, list[str]]) -> Hierarchy:
    parents: dict[str, list[str]] = {}
    for parent, kids in children.items():
        for kid in kids:
            parents.setdefault(kid, []).append(parent)
    return Hierarchy(url, {p: tuple(k) for p, k in children.items()},
                     {c: tuple(sorted(p)) for c, p in parents.items()})


@cache
def provenance() -> dict[str, Any]:
    raw = resources.files("exchange.fhir.spec").joinpath(DATA).read_bytes()
    return dict(orjson.loads(raw)["provenance"])


# -- the search --------------------------------------------------------------------------


def subsumed(modifier: str, system: str | None, code: str | None) -> Subsumed:
    """What ``:below`` or ``:above`` (``modifier``) of ``system|code`` searches; raises
    ``NoHierarchy`` where the system's hierarchy is unknown or the code has no place in it."""
    if not system or not code:
        raise NoHierarchy("subsumption needs a system and a code (system|code)")
    known = hierarchies().get(canonical_system(system))
    if known is not None:
        codes = known.below(code) if modifier == "below" else known.above(code)
        return Subsumed(own=tuple(f"{known.url}|{c}" for c in codes))
    if is_icd10(system):
        form = icd10_form(code)
        if form is None:
            raise NoHierarchy("the code is not an ICD-10 code of the form the exchange "
                              "places in its hierarchy (a category such as F32, or a "
                              "subcategory such as F32.9; blocks and chapters are not)")
        if modifier == "below":
            return Subsumed(placed=(f"={ICD10}|{form}", f"<{ICD10}|{form}"))
        return Subsumed(placed=tuple(f"={ICD10}|{a}" for a in [*icd10_ancestors(form), form]))
    raise NoHierarchy("the exchange does not know that code system's hierarchy (it knows "
                      "HL7's own is-a code systems and ICD-10; others, such as LOINC and "
                      "SNOMED CT, need a terminology server)")


def known_systems() -> Iterator[str]:
    """The systems whose hierarchy is known, as HL7 writes them, and ICD-10."""
    yield from sorted(h.url for h in hierarchies().values())
    yield ICD10
