"""Check a resource against the R4 specification's required bindings and safety invariants.

Runs after the model has checked the resource's shape, so every value has its declared JSON
type; this walk adds what the model does not know: which codes a required binding allows
(from HL7's own ValueSets, generated into ``exchange/fhir/spec``) and the invariants of
``exchange.fhir.invariants``. It walks the resource by element, stepping into arrays,
backbone elements, choice types, extensions and contained or bundled resources.

Errors name the element (``Observation.status``, ``Patient.name[0].use``) and the value
set, never the value.
"""

from collections.abc import Collection, Mapping
from typing import Any

from exchange.errors import BrokenInvariant, InvalidCode, InvalidResource
from exchange.fhir.element_tree import ANY_RESOURCE, Binding, ElementTree, Node, element_tree
from exchange.fhir.invariants import datatype_invariants, reference_violation
from exchange.fhir.references import RELATIVE_ONLY, LocalBases

_INVARIANTS = datatype_invariants()
_CONTAINED = "contained"


def check_conformance(resource: Mapping[str, Any], prefix: str | None = None,
                      tree: ElementTree | None = None,
                      here: LocalBases = RELATIVE_ONLY) -> None:
    """Raise ``InvalidCode`` or ``BrokenInvariant`` for the first element that fails.
    ``here``: the bases an absolute reference may be under (``exchange.fhir.references``)."""
    tree = tree or element_tree()
    node = tree.roots.get(str(resource.get("resourceType")))
    if node is None:
        return  # a type the release's model knows and the package does not: nothing to add
    try:
        _Walk(tree, here).resource(resource, node)
    except _Failure as failure:
        path = (prefix or node.name) + "".join(reversed(failure.steps))
        raise failure.error(failure.message, expression=[path]) from None


class _Failure(Exception):
    """Raised where a check fails; each frame on the way out adds its step to the path, so
    a resource that passes never pays for building paths."""

    def __init__(self, error: type[InvalidResource], message: str, step: str) -> None:
        self.error = error
        self.message = message
        self.steps = [step]


class _Walk:
    __slots__ = ("contained", "here", "resource_types", "roots")

    def __init__(self, tree: ElementTree, here: LocalBases) -> None:
        self.roots = tree.roots
        self.resource_types = tree.resource_types
        self.here = here
        self.contained: Collection[str] = ()

    def resource(self, resource: Mapping[str, Any], node: Node) -> None:
        # Local references (#id) resolve against the resource that holds the contained ones.
        outer = self.contained
        self.contained = _contained_ids(resource)
        try:
            self.node(resource, node)
        finally:
            self.contained = outer

    def node(self, data: Mapping[str, Any], node: Node) -> None:
        name = node.name
        if name == "Reference":
            _violation(reference_violation(data, self.resource_types, self.contained,
                                           self.here))
        else:
            invariant = _INVARIANTS.get(name)
            if invariant is not None:
                _violation(invariant(data))
        elements = node.elements
        for key, value in data.items():
            element = elements.get(key)
            if element is None:
                continue
            try:
                if element.binding is not None:
                    _check_binding(element.binding, value)
                child = element.node
                if child is None and element.datatype != ANY_RESOURCE:
                    continue
                if isinstance(value, list):
                    for index, item in enumerate(value):
                        try:
                            self._child(key, item, child)
                        except _Failure as failure:
                            failure.steps.append(f"[{index}]")
                            raise
                else:
                    self._child(key, value, child)
            except _Failure as failure:
                failure.steps.append(f".{key}")
                raise

    def _child(self, key: str, value: Any, child: Node | None) -> None:
        if not isinstance(value, dict):
            return
        if child is not None:
            if not child.inert or "extension" in value or "modifierExtension" in value:
                self.node(value, child)
            return
        inner = self.roots.get(str(value.get("resourceType")))
        if inner is None:
            return
        if key == _CONTAINED:
            self.node(value, inner)  # its #references point at its siblings
        else:
            self.resource(value, inner)


def _violation(found: tuple[str, str] | None) -> None:
    if found is not None:
        element, message = found
        raise _Failure(BrokenInvariant, message, f".{element}")


def _contained_ids(resource: Mapping[str, Any]) -> Collection[str]:
    contained = resource.get(_CONTAINED)
    if not isinstance(contained, list):
        return ()
    return {c["id"] for c in contained if isinstance(c, dict) and isinstance(c.get("id"), str)}


def _check_binding(binding: Binding, value: Any) -> None:
    values = value if isinstance(value, list) else [value]
    for index, item in enumerate(values):
        try:
            if binding.datatype == "code":
                _check_code(binding, item)
            elif binding.datatype == "Coding":
                _check_coding(binding, item)
            elif binding.datatype == "CodeableConcept":
                _check_concept(binding, item)
        except _Failure as failure:
            if isinstance(value, list):
                failure.steps.append(f"[{index}]")
            raise


def _check_code(binding: Binding, code: Any) -> None:
    if isinstance(code, str) and code not in binding.codes:
        raise _Failure(InvalidCode, _not_in(binding), "")


def _check_concept(binding: Binding, concept: Any) -> None:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    if not codings:
        return  # text alone makes no coded claim to check
    for position, coding in enumerate(codings):
        try:
            _check_coding(binding, coding)
        except _Failure as failure:
            failure.steps.append(f".coding[{position}]")
            raise
    if not any(isinstance(c, dict) and c.get("system") in binding.systems for c in codings):
        # Translations are welcome beside a code of the value set, not instead of it.
        raise _Failure(InvalidCode, f"{binding.path} needs a coding from {binding.value_set}.",
                       ".coding")


def _check_coding(binding: Binding, coding: Any) -> None:
    # A coding of the value set's own system must be one of its codes; one of another
    # system is a translation (whether one of the value set is there is the caller's check).
    if not isinstance(coding, dict):
        return
    allowed = binding.systems.get(coding.get("system"))  # type: ignore[arg-type]
    code = coding.get("code")
    if allowed is not None and isinstance(code, str) and code not in allowed:
        raise _Failure(InvalidCode, _not_in(binding), ".code")


def _not_in(binding: Binding) -> str:
    return f"{binding.path} must be a code of {binding.value_set}."
