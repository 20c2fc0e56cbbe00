"""The re-identification guard for pseudonymized outputs: k-anonymity over quasi-identifiers.

The quasi-identifiers of a resident are what a profile lets through about them: their
Patient record as the profile shapes it at the generalization level in force (age band,
sex, zone, and whatever else the profile keeps). The guard
climbs the profile's ladder (each rung coarser) until the classes under k hold no more than
the profile's suppression budget, or the ladder ends; then it suppresses the residents of
classes still under k. Every class released holds at least k residents.
It reports the rung it chose and whom it suppressed, so the road can say what it did.
"""

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from exchange.privacy.methods import SIV_PREFIX


@dataclass(frozen=True)
class GuardResult:
    level: int
    granularity: dict[str, Any]
    suppressed: frozenset[str]
    population: int
    smallest_class: int  # after suppression; 0 when nothing is left
    released: frozenset[str] = frozenset()  # the residents judged and not suppressed

    def report(self, k: int) -> dict[str, Any]:
        return {"k": k, "level": self.level, "granularity": self.granularity,
                "population": self.population, "suppressed": len(self.suppressed),
                "smallest_class": self.smallest_class}


# Elements of a shaped Patient that are not quasi-identifiers: its pseudonym and metadata.
NOT_QUASI = frozenset({"id", "meta", "resourceType"})
Shape = Callable[[str, dict[str, Any], Mapping[str, Any]], dict[str, Any]]


def quasi_identifiers(shaped: dict[str, Any]) -> bytes:
    """Everything the profile let through about the person, as one comparable value.
    Identifiers count too, unless they left as re-identification tokens."""
    kept = {k: v for k, v in shaped.items() if k not in NOT_QUASI}
    if "identifier" in kept:
        clear = [i for i in kept["identifier"] if not str(
            (i or {}).get("value", "") if isinstance(i, dict) else i).startswith(SIV_PREFIX)]
        if clear:
            kept["identifier"] = clear
        else:
            del kept["identifier"]
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def guard(patients: Mapping[str, dict[str, Any]], k: int,
          ladder: tuple[dict[str, Any], ...], shape: Shape,
          max_suppression: float = 0.0) -> GuardResult:
    """``patients``: resident id -> their Patient record as stored; ``shape`` applies the
    profile at a rung of the ladder, so the classes are exactly what a recipient sees.
    The first rung whose small classes hold at most ``max_suppression`` of the population
    is chosen (one outlier need not coarsen everyone); the last rung if none does."""
    if not ladder:
        raise ValueError("a k-anonymity ladder needs at least one rung")
    classes: dict[str, bytes] = {}
    counts: Counter[bytes] = Counter()
    level = 0
    for rung, granularity in enumerate(ladder):
        level = rung
        classes = {r: quasi_identifiers(shape(r, p, granularity)) for r, p in patients.items()}
        counts = Counter(classes.values())
        small = sum(n for n in counts.values() if n < k)
        if small <= max_suppression * len(patients):
            break
    suppressed = frozenset(r for r, c in classes.items() if counts[c] < k)
    remaining = [n for n in counts.values() if n >= k]
    return GuardResult(level, dict(ladder[level]), suppressed, len(patients),
                       min(remaining) if remaining else 0,
                       frozenset(patients) - suppressed)


def outcome_entry(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What the guard did, as a searchset's outcome entry."""
    issues = []
    for r in reports:
        granularity = ", ".join(f"{k}={v}" for k, v in sorted(r["granularity"].items()))
        issues.append({"severity": "information", "code": "informational",
                       "details": {"text": f"k-anonymity k={r['k']}: generalized to level "
                                           f"{r['level']} ({granularity}); suppressed "
                                           f"{r['suppressed']} of {r['population']} "
                                           "residents."}})
    return {"resource": {"resourceType": "OperationOutcome", "issue": issues},
            "search": {"mode": "outcome"}}
