"""Expand HL7 ValueSets into their codes, using only the CodeSystems of the same package.

A value set is expandable when every include names listed concepts, whole code systems the
package defines completely, or other value sets that are themselves expandable. Anything
else (filters, external terminologies such as UCUM, BCP-13 or ISO 4217, fragments) cannot
be checked without a terminology server, so it is reported with the reason instead of
being guessed at: a guessed expansion would refuse valid data.
"""

from collections.abc import Iterator, Mapping
from typing import Any

Codes = dict[str, set[str]]  # system -> codes


class NotExpandable(Exception):
    """The value set needs something the package does not hold; the message says what."""


def canonical(url: str) -> str:
    """A canonical URL without its ``|version`` (bindings in 4.0.1 carry ``|4.0.1``)."""
    return url.split("|", 1)[0]


class Expander:
    def __init__(self, value_sets: Mapping[str, Any], code_systems: Mapping[str, Any]) -> None:
        self._value_sets = value_sets
        self._code_systems = code_systems

    def expand(self, url: str, _seen: frozenset[str] = frozenset()) -> Codes:
        """Every code of the value set at ``url``, by system; ``NotExpandable`` if unknown."""
        url = canonical(url)
        if url in _seen:
            raise NotExpandable("includes itself")
        value_set = self._value_sets.get(url)
        if value_set is None:
            raise NotExpandable("not defined in the package")
        compose = value_set.get("compose")
        if not isinstance(compose, dict):
            raise NotExpandable("has no compose")
        codes: Codes = {}
        for include in compose.get("include", []):
            for system, found in self._include(include, _seen | {url}).items():
                codes.setdefault(system, set()).update(found)
        for exclude in compose.get("exclude", []):
            if set(exclude) - {"system", "version", "concept"} or "concept" not in exclude:
                raise NotExpandable("excludes by filter or value set")
            codes.get(exclude["system"], set()).difference_update(
                c["code"] for c in exclude["concept"])
        return codes

    def _include(self, include: Mapping[str, Any], seen: frozenset[str]) -> Codes:
        if "filter" in include:
            raise NotExpandable("includes by filter")
        system = include.get("system")
        imported = include.get("valueSet", [])
        if system and imported:
            raise NotExpandable("intersects a code system with value sets")
        codes: Codes = {}
        for url in imported:
            for sys, found in self.expand(url, seen).items():
                codes.setdefault(sys, set()).update(found)
        if system is None:
            return codes
        if "concept" in include:
            # Listed concepts are the whole answer, even for an external system.
            return {system: {c["code"] for c in include["concept"]}}
        code_system = self._code_systems.get(system)
        if code_system is None:
            raise NotExpandable(f"needs the external terminology {system}")
        if code_system.get("content") != "complete":
            raise NotExpandable(f"the package holds only part of {system}")
        return {system: set(_all_codes(code_system.get("concept", [])))}


def _all_codes(concepts: list[Any]) -> Iterator[str]:
    """Codes of a hierarchical CodeSystem, children included (``is-a`` is implied)."""
    for concept in concepts:
        yield concept["code"]
        yield from _all_codes(concept.get("concept", []))
