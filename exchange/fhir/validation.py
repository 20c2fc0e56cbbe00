"""Validate incoming resources with the release's models, then against the specification's
required bindings and safety invariants; name the failing element."""

import re
from typing import Any

import orjson
from pydantic import ValidationError

from exchange.errors import InvalidRequest, InvalidResource, MalformedValue
from exchange.fhir.conformance import check_conformance
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
    if _deeper_than(value, MAX_DEPTH):
        raise InvalidRequest(f"The request body is nested deeper than {MAX_DEPTH} levels.")
    return value


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
                      expected_type: str | None = None) -> dict[str, Any]:
    """Check ``resource`` against its FHIR model, then its codes and invariants, and return
    it unchanged.

    A wrong shape is ``InvalidResource`` (422); a code outside a required binding is
    ``InvalidCode`` and a broken invariant ``BrokenInvariant`` (both 400). ``where``
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
    control = _control_character_at(resource, prefix)
    if control is not None:
        raise MalformedValue("A string holds a control character; FHIR's strings allow "
                             "only tab, carriage return and line feed.", expression=[control])
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        paths = [element_path(prefix, tuple(e["loc"])) for e in errors[:5]]
        first = errors[0]
        raise InvalidResource(
            f"Invalid element {paths[0]}: {_safe_message(first)}", expression=paths) from None
    check_conformance(resource, prefix)
    return resource


# R4's string: [ \r\n\t\S]+. NUL and the other C0 controls are not text: stored, they
# break the readers downstream (a NUL ends a C string, an escape rewrites a terminal).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _control_character_at(node: Any, path: str) -> str | None:
    """The path of the first string holding a control character, keys included."""
    if isinstance(node, str):
        return path if _CONTROL.search(node) else None
    if isinstance(node, dict):
        for key, value in node.items():
            if _CONTROL.search(key):
                return path
            found = _control_character_at(value, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found = _control_character_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _safe_message(error: Any) -> str:
    # pydantic's messages describe the rule ("Field required", "Input should be ..."); the
    # context may quote the value, so only the message itself is kept, and only its head.
    message = str(error.get("msg", "invalid value"))
    return message.split("\n", 1)[0][:200]
