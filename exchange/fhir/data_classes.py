"""Data classes narrower than a resource type: the categories a decision opens or denies.

The policy answers, per type, with the grants that admit a resource (each: the categories
it opens, or all of them, minus the categories its nested denies name) and the categories
a resident-wide deny names. This module reads that answer and applies it to one
resource; the repository turns the same rule into SQL so that counts and pages agree.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Category = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class Grant:
    only: frozenset[Category] | None  # None: every category of the type
    excepted: frozenset[Category]

    def admits(self, categories: frozenset[Category]) -> bool:
        if self.only is not None and not categories & self.only:
            return False
        return not categories & self.excepted


@dataclass(frozen=True)
class ClassRule:
    grants: tuple[Grant, ...]
    excepted: frozenset[Category]

    def admits(self, resource: dict[str, Any]) -> bool:
        categories = frozenset(categories_of(resource))
        if categories & self.excepted:
            return False
        return any(g.admits(categories) for g in self.grants)


def categories_of(resource: dict[str, Any]) -> Iterator[Category]:
    """The codings of a resource's ``category`` element (a list or a single concept)."""
    value = resource.get("category")
    for concept in value if isinstance(value, list) else [value]:
        if isinstance(concept, dict):
            for coding in concept.get("coding") or []:
                if isinstance(coding, dict) and isinstance(coding.get("system"), str) \
                        and isinstance(coding.get("code"), str):
                    yield coding["system"], coding["code"]


def read_rules(answer: Any) -> dict[str, ClassRule]:
    """The policy's ``obligations.categories``; raises TypeError/KeyError on a bad shape."""
    if answer is None:
        return {}
    if not isinstance(answer, dict):
        raise TypeError("categories")
    return {str(t): ClassRule(
        grants=tuple(Grant(None if g["only"] is None else _categories(g["only"]),
                           _categories(g["except"])) for g in rule["grants"]),
        excepted=_categories(rule["except"])) for t, rule in answer.items()}


def _categories(items: Iterable[Any]) -> frozenset[Category]:
    return frozenset((str(c["system"]), str(c["code"])) for c in items)
