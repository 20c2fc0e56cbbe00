"""Facts derived from a resident's record: what a recipient that needs a resident's needs,
not their record, receives (the hub's care matching, under a profile's ``derived``).

A profile lists its facts (``policies/exchange/profiles/care-needs.json``)::

    {"name": "adl-band", "from": "Observation", "search": [["code", "<system>|<code>"]],
     "reduce": "latest", "element": "valueInteger",
     "bands": [{"below": 21, "code": "total-dependence"}, ..., {"code": "independent"}]}

- ``from`` and ``search``: the resources a fact reads, found by the same search syntax a
  client would use, among the types the decision lets the recipient derive from.
- ``reduce``:
  - ``classes``: each resource's first coding is matched against ``classes`` (code
    prefixes per system); the fact holds every class found, sorted.
  - ``latest``: the number at ``element`` of the resource with the latest ``date``
    element, placed in ``bands`` (each ``below`` an exclusive bound; the last band has
    none).
  - ``since``: days from the latest ``date`` element to today, placed in ``bands``.
- A fact with nothing to read is absent; ``absent`` names a code to release instead.

Each fact leaves as an extension on the resident's shaped Patient (``FACT_URL``/name,
``valueCoding`` from ``FACT_SYSTEM``), so the k-anonymity guard judges the facts with the
age band, zone and gender they travel with: they are what a clinic or an insurer that
knows the resident could match them by. The rung of the guard's ladder in force says
which facts leave (``facts``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from exchange.privacy.methods import DATE

FACT_URL = "https://fhir.community-exchange.example/StructureDefinition/care-fact"
FACT_SYSTEM = "https://fhir.community-exchange.example/CodeSystem/care-fact"
REDUCERS = frozenset({"classes", "latest", "since"})


@dataclass(frozen=True)
class Band:
    code: str
    below: float | None  # exclusive upper bound; None for the last band


@dataclass(frozen=True)
class Fact:
    name: str
    source: str  # the resource type it reads
    search: tuple[tuple[str, str], ...]
    reduce: str
    element: str = ""
    date: str = ""
    classes: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # code, system, prefixes
    bands: tuple[Band, ...] = ()
    absent: str | None = None


def load_facts(raw: Sequence[Mapping[str, Any]]) -> tuple[Fact, ...]:
    facts = []
    for item in raw:
        reduce = str(item["reduce"])
        if reduce not in REDUCERS:
            raise ValueError(f"fact {item.get('name')!r}: unknown reduce {reduce!r}")
        bands = tuple(Band(str(b["code"]), float(b["below"]) if "below" in b else None)
                      for b in item.get("bands", []))
        if reduce != "classes" and (not bands or bands[-1].below is not None):
            raise ValueError(f"fact {item['name']!r}: its last band needs no bound")
        facts.append(Fact(
            name=str(item["name"]), source=str(item["from"]),
            search=tuple((str(k), str(v)) for k, v in item.get("search", [])),
            reduce=reduce, element=str(item.get("element", "")),
            date=str(item.get("date", "")),
            classes=tuple((str(c["code"]), str(system), tuple(str(p) for p in prefixes))
                          for c in item.get("classes", [])
                          for system, prefixes in c["systems"].items()),
            bands=bands, absent=item.get("absent")))
    return tuple(facts)


def derive(facts: Sequence[Fact], sources: Mapping[str, Sequence[dict[str, Any]]],
           today: date) -> dict[str, list[str]]:
    """Each fact's codes for one resident; ``sources``: fact name -> the resources found."""
    out: dict[str, list[str]] = {}
    for fact in facts:
        codes = _reduce(fact, sources.get(fact.name, ()), today)
        if not codes and fact.absent is not None:
            codes = [fact.absent]
        if codes:
            out[fact.name] = codes
    return out


def extensions(derived: Mapping[str, list[str]], released: Sequence[str] | None
               ) -> list[dict[str, Any]]:
    """The facts as extensions, those the rung in force releases (None: all)."""
    return [{"url": f"{FACT_URL}/{name}",
             "valueCoding": {"system": FACT_SYSTEM, "code": f"{name}/{code}"}}
            for name in sorted(derived) if released is None or name in released
            for code in derived[name]]


def _reduce(fact: Fact, resources: Sequence[dict[str, Any]], today: date) -> list[str]:
    if fact.reduce == "classes":
        found = {code for r in resources for code in _classes(fact, r)}
        return sorted(found)
    dated = [(when, r) for r in resources if (when := _date(r.get(fact.date))) is not None]
    if not dated:
        return []
    when, latest = max(dated, key=lambda pair: pair[0])
    if fact.reduce == "since":
        return [_band(fact.bands, (today - when).days)]
    value = latest.get(fact.element)
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [_band(fact.bands, value)]


def _classes(fact: Fact, resource: dict[str, Any]) -> list[str]:
    concept = resource.get("code")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    found = []
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        code = coding["code"].upper()
        for name, system, prefixes in fact.classes:
            if coding.get("system") == system and code.startswith(prefixes):
                found.append(name)
    return found


def _date(value: Any) -> date | None:
    if isinstance(value, dict):  # a Period: its start
        value = value.get("start")
    if not isinstance(value, str) or DATE.fullmatch(value) is None or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _band(bands: Sequence[Band], value: float) -> str:
    for band in bands:
        if band.below is None or value < band.below:
            return band.code
    return bands[-1].code
