"""The R4 element tree the conformance checker walks, compiled from the generated data.

``exchange/fhir/spec/required_bindings.json`` lists, per structure (resource type, data type
or backbone element), the child elements worth walking into or carrying a required binding.
Here each becomes a ``Node`` whose ``elements`` are keyed by the JSON property name, so a
choice element ``value[x]`` appears once per type (``valueQuantity``, ``valueCodeableConcept``)
and a lookup costs one dict access per property of the resource.
"""

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import orjson

from exchange.fhir.invariants import CHECKED_TYPES

DATA = "required_bindings.json"
# Every element but a primitive may carry extensions; the file leaves them out.
_IMPLIED = {"extension": "Extension", "modifierExtension": "Extension"}
ANY_RESOURCE = "Resource"  # contained resources, Bundle.entry.resource: typed by the data


@dataclass(slots=True)
class Binding:
    """A required binding: ``codes`` for a ``code`` element, ``systems`` for codings."""

    path: str  # as the specification writes it, e.g. ``Observation.status``
    value_set: str
    datatype: str  # code, Coding or CodeableConcept
    codes: frozenset[str]
    systems: dict[str, frozenset[str]]


@dataclass(slots=True)
class Element:
    datatype: str
    node: "Node | None"  # the structure to walk into; None for a primitive or a resource
    binding: Binding | None = None


@dataclass(slots=True)
class Node:
    name: str
    elements: dict[str, Element] = field(default_factory=dict)
    # Nothing to check below but extensions (a Coding, most CodeableConcepts): the walk only
    # steps in when the value carries one, which keeps validation's cost near the model's.
    inert: bool = False


@dataclass(frozen=True, slots=True)
class ElementTree:
    roots: dict[str, Node]  # resource type -> its node
    resource_types: frozenset[str]
    provenance: dict[str, Any]
    not_checkable: dict[str, str]


def _json_key(name: str, datatype: str) -> str:
    if name.endswith("[x]"):
        return name[:-3] + datatype[0].upper() + datatype[1:]
    return name


def compile_tree(data: dict[str, Any], checked_types: frozenset[str]) -> ElementTree:
    """``checked_types`` are the data types with invariants of their own (Reference, ...)."""
    structures: dict[str, dict[str, Any]] = data["structures"]
    value_sets: dict[str, dict[str, list[str]]] = data["valueSets"]
    nodes = {name: Node(name) for name in structures}
    for name, children in structures.items():
        node = nodes[name]
        for element, types in {**_IMPLIED, **children}.items():
            path = f"{name}.{element}"
            for datatype in [types] if isinstance(types, str) else types:
                binding = _binding(path, datatype, data["bindings"], value_sets)
                node.elements[_json_key(element, datatype)] = Element(
                    datatype, nodes.get(datatype), binding)
    _mark_inert(nodes, checked_types)
    resource_types = frozenset(data["resourceTypes"])
    return ElementTree({t: nodes[t] for t in resource_types}, resource_types,
                       data["provenance"], data["notCheckable"])


def _mark_inert(nodes: dict[str, Node], checked_types: frozenset[str]) -> None:
    # Assume every node inert, then un-mark until nothing changes: recursive structures
    # (Questionnaire.item in itself) settle instead of looping.
    for node in nodes.values():
        node.inert = node.name not in checked_types
    changed = True
    while changed:
        changed = False
        for node in nodes.values():
            if node.inert and any(_live(key, element) for key, element in node.elements.items()):
                node.inert = False
                changed = True


def _live(key: str, element: Element) -> bool:
    if key in _IMPLIED:
        return False
    if element.binding is not None or element.datatype == ANY_RESOURCE:
        return True
    return element.node is not None and not element.node.inert


def _binding(path: str, datatype: str, bindings: dict[str, str],
             value_sets: dict[str, dict[str, list[str]]]) -> Binding | None:
    url = bindings.get(path)
    if url is None:
        return None
    systems = {system: frozenset(codes) for system, codes in value_sets[url].items()}
    codes = frozenset().union(*systems.values()) if systems else frozenset()
    return Binding(path, url, datatype, codes, systems)


@cache
def element_tree() -> ElementTree:
    """The tree of the generated data shipped with the exchange, compiled once."""
    raw = resources.files("exchange.fhir.spec").joinpath(DATA).read_bytes()
    return compile_tree(orjson.loads(raw), CHECKED_TYPES)
