"""The R4 datatype of an element, from HL7's definitions as ``fhir.resources`` models them.

``datatype("Observation.valueQuantity.unit")`` is ``"string"``; ``"Observation.status"``
is ``"code"``; a complex element gives its type's name (``"Quantity"``), an unknown path
``None``. List items are transparent, as in profile paths. The de-identification profiles
use it to tell free text (``string``, ``markdown``) from coded values.
"""

import types
import typing
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# Primitive datatypes whose values are codes, identifiers of definitions or numbers:
# what a profile that releases free text by allow-list lets through as it is.
CODED = frozenset({"code", "uri", "url", "canonical", "id", "oid", "uuid", "boolean",
                   "integer", "unsignedInt", "positiveInt", "decimal", "date", "dateTime",
                   "instant", "time"})
FREE_TEXT = frozenset({"string", "markdown"})


def _unwrap(annotation: Any) -> Any:
    """The element type inside Optional[...], List[...] and unions with None."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 (the models' own spelling)
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _model(name: str) -> Any:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError):
        return None


@cache
def _fields(name: str) -> dict[str, tuple[str, str | None]]:
    """A model's elements: JSON name -> (datatype, the model to walk into or None)."""
    model = _model(name)
    if model is None:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for key, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        inner = _unwrap(info.annotation)
        json_name = info.alias or key
        if typing.get_origin(inner) is typing.Annotated:
            marks = typing.get_args(inner)[1:]
            primitive = type(marks[0]).__name__ if marks else "string"
            out[json_name] = (primitive[:1].lower() + primitive[1:], None)
        else:
            type_name = getattr(inner, "__name__", "")
            complex_name = type_name[:-4] if type_name.endswith("Type") else type_name
            out[json_name] = (complex_name, complex_name)
    return out


@cache
def datatype(path: str) -> str | None:
    segments = path.split(".")
    model: str | None = segments[0]
    kind: str | None = None
    for segment in segments[1:]:
        if model is None:
            return None
        found = _fields(model).get(segment)
        if found is None:
            return None
        kind, model = found
    return kind


def is_free_text(path: str) -> bool:
    """Whether a string at ``path`` may be anything a person typed: a ``string`` or
    ``markdown`` element, or one R4 does not define. A Reference's ``reference`` is a
    string by type but a pointer by meaning (checked on the way in, shaped by the
    profiles' reference rules), so it is not free text."""
    kind = datatype(path)
    if kind in CODED:
        return False
    parent, _, leaf = path.rpartition(".")
    return not (leaf == "reference" and datatype(parent) == "Reference")
