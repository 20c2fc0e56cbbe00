"""Validate incoming resources against R4's JSON rules and the release's models, then
against the specification's required bindings and safety invariants; name the failing
element."""

from typing import Any

import orjson
from pydantic import ValidationError

from exchange.errors import InvalidRequest, InvalidResource
from exchange.fhir.conformance import check_conformance
from exchange.fhir.primitives import check_primitives
from exchange.fhir.references import RELATIVE_ONLY, LocalBases
from exchange.fhir.release import model_class

# Deeper than any resource of the record goes (a Questionnaire's nested items, a contained
# resource's extensions), shallow enough that validation never runs out of stack: 300
# levels of extensions were a RecursionError and a 500.
MAX_DEPTH = 64


def parse_json(body: bytes) -> Any:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    check_depth(value, "The request body")
    return value


def check_depth(value: Any, what: str) -> None:
    """A 400 for JSON nested deeper than ``MAX_DEPTH``: a body as it arrives, and what a
    JSON Patch builds of a stored resource (each ``copy`` into itself doubles its depth)."""
    if _deeper_than(value, MAX_DEPTH):
        raise InvalidRequest(f"{what} is nested deeper than {MAX_DEPTH} levels.")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit``: level by level, not by recursion."""
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [child for node in level
                 for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
    return False


def element_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier() and part != "root":
            # pydantic adds validator names ("root", "function-after[...]") to locations.
            path += f".{part}"
    return path


def validate_resource(resource: Any, *, where: str | None = None,
                      expected_type: str | None = None,
                      here: LocalBases = RELATIVE_ONLY) -> dict[str, Any]:
    """Check ``resource`` against R4's JSON rules and its FHIR model, then its codes and
    invariants, and return it unchanged.

    A wrong shape or a primitive of the wrong JSON type is ``InvalidResource`` (422); a
    control character ``MalformedValue``, a code outside a required binding
    ``InvalidCode`` and a broken invariant ``BrokenInvariant`` (a narrative outside R4's
    rules, a reference to another server than ``here`` names) are 400s. ``where``
    prefixes element paths in errors (for bundle entries). Error text names the element
    and the rule, never the offending value: values may be patient data.
    """
    if not isinstance(resource, dict):
        raise InvalidResource("A resource must be a JSON object.",
                              expression=[where] if where else None)
    resource_type = resource.get("resourceType")
    prefix = where or str(resource_type or "Resource")
    if not isinstance(resource_type, str):
        raise InvalidResource("The resource has no resourceType.",
                              expression=[f"{prefix}.resourceType"])
    if expected_type is not None and resource_type != expected_type:
        raise InvalidResource(f"Expected a {expected_type} resource.",
                              expression=[f"{prefix}.resourceType"])
    try:
        model = model_class(resource_type)
    except KeyError:
        raise InvalidResource("Unknown resourceType.",
                              expression=[f"{prefix}.resourceType"]) from None
    check_primitives(resource, model, prefix)
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        paths = [element_path(prefix, tuple(e["loc"])) for e in errors[:5]]
        first = errors[0]
        raise InvalidResource(
            f"Invalid element {paths[0]}: {_safe_message(first)}", expression=paths) from None
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        # The library fails on some shapes it should refuse (a bool where it parses a JSON
        # string as a model): still the client's malformed resource, never a 500.
        raise InvalidResource("The resource does not have the shape of its FHIR model.",
                              expression=[prefix]) from None
    check_conformance(resource, prefix, here=here)
    return resource


def _safe_message(error: Any) -> str:
    # pydantic's messages describe the rule ("Field required", "Input should be ..."); the
    # context may quote the value, so only the message itself is kept, and only its head.
    message = str(error.get("msg", "invalid value"))
    return message.split("\n", 1)[0][:200]
