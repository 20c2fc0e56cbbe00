"""The search parameters the exchange supports, and where their values live.

They are HL7's own R4 ``SearchParameter`` definitions, generated into
``exchange/fhir/spec/search_parameters.json`` (see ``spec/search_generation.py``), for
the types of a resident's record and of the community's directory. This module reads that
file once; the indexer and the search parser read this module.
"""

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

Kind = Literal["token", "string", "date", "reference", "uri", "quantity", "number",
               "composite"]

SPEC = Path(__file__).with_name("spec") / "search_parameters.json"

# The kinds the store indexes. Numbers and quantities are not indexed: a measurement's
# value in clear at rest is a fingerprint (issue 15 decides how dates are kept).
SEARCHABLE_KINDS = frozenset({"token", "uri", "string", "date", "reference"})
# Searched on the decrypted resource, never indexed (fhir/values.py).
VALUE_KINDS = frozenset({"number", "quantity", "composite"})


@dataclass(frozen=True)
class Step:
    """A path in the stored JSON (dot-separated element names, stepping into every item of
    a list), optionally keeping only items whose element ``where[0]`` equals ``where[1]``
    (``telecom.where(system='phone')``) or references to one type (``target``)."""

    path: str
    where: tuple[str, str] | None = None
    target: str | None = None


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    steps: tuple[Step, ...]  # empty: evaluate ``expression`` with a FHIRPath engine
    expression: str
    targets: tuple[str, ...] = ()  # for references: the stored types they may point at
    # A composite's items ("": the resource itself; "component": each component) and, per
    # component, its kind and its paths within an item.
    items: tuple[str, ...] = ()
    components: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Other parameters of the type whose values together are exactly this one's
    # (Observation's combo-code is code with component-code): it is searched under theirs
    # and not indexed twice. Empty: its values are indexed under its own name.
    parts: tuple[str, ...] = ()

    @property
    def index_keys(self) -> tuple[str, ...]:
        """The names its values are indexed under."""
        return self.parts or (self.name,)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(s.path for s in self.steps)

    @cached_property
    def roots(self) -> frozenset[str]:
        """The top-level elements it reads: a search by it may match only where the
        decision keeps them all (a payer that is not shown an address cannot find
        residents by it). An expression without steps is read for its first element."""
        if self.steps:
            return frozenset(s.path.split(".", 1)[0] for s in self.steps)
        if self.kind == "composite":
            inside = [i.split(".", 1)[0] for i in self.items if i]
            direct = [p.split(".", 1)[0] for _, paths in self.components for p in paths]
            return frozenset(inside + (direct if "" in self.items else []))
        head = self.expression.split(".", 2)
        return frozenset({head[1].split("(")[0].split(" ")[0]} if len(head) > 1 else ())


Params = dict[str, dict[str, SearchParam]]


def _param(name: str, entry: dict[str, Any], stored: set[str]) -> SearchParam | None:
    steps = tuple(Step(s["path"], tuple(s["where"]) if "where" in s else None,
                       s.get("target")) for s in entry.get("steps", ()))
    targets = tuple(t for t in entry.get("targets", ()) if t in stored)
    if entry["type"] == "reference" and not targets:
        return None  # it can only point at what this exchange does not store
    components = tuple((c["type"], tuple(c["paths"])) for c in entry.get("components", ()))
    return SearchParam(name, entry["type"], steps, entry["expression"], targets,
                       tuple(entry.get("items", ())), components)


def _load(spec: dict[str, Any]) -> tuple[Params, dict[str, tuple[str, ...]]]:
    stored = set(spec["record_types"]) | set(spec["directory_types"])
    common = {name: _param(name, entry, stored) for name, entry in spec["common"].items()}
    params: Params = {}
    for rtype, defined in spec["parameters"].items():
        params[rtype] = {n: p for n, p in common.items() if p is not None}
        for name, entry in sorted(defined.items()):
            param = _param(name, entry, stored)
            if param is not None:
                params[rtype][name] = param
        params[rtype] = _with_parts(params[rtype])
    compartment = {t: tuple(p) for t, p in spec["compartment"].items()}
    return params, compartment


def _with_parts(params: dict[str, SearchParam]) -> dict[str, SearchParam]:
    """Each parameter whose steps are the union of other indexed parameters' (each a proper
    subset of its own, so that no two stand for each other) takes those as its parts."""
    result = dict(params)
    for name, param in params.items():
        if param.kind not in SEARCHABLE_KINDS or not param.steps:
            continue
        mine = set(param.steps)
        parts = sorted(other.name for other in params.values()
                       if other.kind == param.kind and other.steps
                       and set(other.steps) < mine)
        if parts and set().union(*(params[p].steps for p in parts)) == mine:
            result[name] = replace(param, parts=tuple(parts))
    return result


_SPEC = json.loads(SPEC.read_text())
PARAMS, _COMPARTMENT_PARAMS = _load(_SPEC)

# The parameters that put a resource in a resident's record (HL7's Patient compartment),
# the one naming whom it is about first. A Patient is its own compartment.
COMPARTMENT: dict[str, tuple[SearchParam, ...]] = {
    rtype: tuple(PARAMS[rtype][p] for p in names if p in PARAMS[rtype])
    for rtype, names in _COMPARTMENT_PARAMS.items() if rtype != "Patient"}

# Resources that belong to no resident: the community's directory.
DIRECTORY_TYPES = frozenset(_SPEC["directory_types"])
RESIDENT_TYPES = frozenset(_SPEC["record_types"])
SUPPORTED_TYPES = RESIDENT_TYPES | DIRECTORY_TYPES
PROVENANCE: dict[str, Any] = _SPEC["provenance"]

# Per type, the top-level elements R4 marks as summary (``_summary=true``) and those it
# requires (kept by ``_summary=text``), from the same StructureDefinitions.
SUMMARY: dict[str, frozenset[str]] = {
    t: frozenset(e["summary"]) for t, e in _SPEC["elements"].items()}
MANDATORY: dict[str, frozenset[str]] = {
    t: frozenset(e["mandatory"]) for t, e in _SPEC["elements"].items()}
