"""FHIR R4's JSON rules for primitive values (json.html, datatypes.html), checked by
walking a resource beside the release's models.

The models coerce: ``"active": "true"``, ``"valueInteger": "5"``, ``"valueBoolean": 1``,
``"birthDate": 0`` (the epoch) all validate, and the exchange stores the JSON as sent, so
they were stored as sent. R4's JSON leaves no room for that: a boolean is JSON true or
false; an integer, unsignedInt or positiveInt a JSON number without a fraction, in its
32-bit range; a decimal a JSON number; every other primitive (string, code, id, uri, date,
dateTime, instant, ...) a non-empty JSON string, and no property is null outside an
array. Which primitive an element holds is read from the model's field types, so no
resource's elements are listed here.

The same walk refuses a control character in any string or key, and holds every
Narrative's XHTML (an ``xhtml`` element, wherever it sits: ``text.div`` of a resource, a
contained one, a Bundle's entry) to R4's rules (``exchange.fhir.narrative``). It is the one
pass over the resource before the model's: paths are built only on the way out of a
failure, so a resource that passes pays for none.
"""

import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

from fhir_core.types import FhirBase, FhirElementOrResourceBase

from exchange.errors import BrokenInvariant, InvalidResource, MalformedValue
from exchange.fhir.narrative import narrative_violation
from exchange.fhir.release import model_class

# R4's string: [ \r\n\t\S]+. NUL and the other C0 controls are not text: stored, they
# break the readers downstream (a NUL ends a C string, an escape rewrites a terminal).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONTROL_MESSAGE = ("A string holds a control character; FHIR's strings allow only tab, "
                   "carriage return and line feed.")

_INT32 = (-(2 ** 31), 2 ** 31 - 1)
# R4's ranges of its integer types (datatypes.html): all within a signed 32-bit integer.
_INTEGERS = {"integer": _INT32, "unsignedInt": (0, _INT32[1]), "positiveInt": (1, _INT32[1])}


_WHITESPACE = re.compile(r"\s")
_BASE64 = re.compile(r"[0-9a-zA-Z+/=]+")


def _no_whitespace(value: str) -> bool:
    return not _WHITESPACE.search(value)


def _base64(value: str) -> bool:
    # R4: (\s*([0-9a-zA-Z\+/=]){4}\s*)+ ; as a regex it backtracks exponentially on runs of
    # whitespace, so the same is checked without one: whole quads once whitespace is gone.
    compact = "".join(value.split())
    return len(compact) % 4 == 0 and _BASE64.fullmatch(compact) is not None


_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# The string types whose R4 pattern the model does not hold them to (it does for code,
# id, date, dateTime, instant and time). uri, url and canonical are R4's \S*.
_PATTERNS: dict[str, Callable[[str], bool]] = {
    "uri": _no_whitespace, "url": _no_whitespace, "canonical": _no_whitespace,
    "base64Binary": _base64,
    "oid": lambda v: _OID.fullmatch(v) is not None,
    "uuid": lambda v: _UUID.fullmatch(v) is not None,
}


Check = Callable[[Any], None]  # raises _Bad for a value an element may not hold
_Table = dict[str, Check]  # JSON property -> the check of what it holds
_TABLES: dict[Any, _Table] = {}


class _Bad(Exception):
    """Raised where a value fails; each frame on the way out adds its step to the path."""

    def __init__(self, error: type[InvalidResource], message: str) -> None:
        self.error = error
        self.message = message
        self.steps: list[str] = []


def check_primitives(resource: dict[str, Any], model: Any, prefix: str) -> None:
    """Refuse the first value of ``resource`` (validated by ``model``) that breaks R4's
    JSON rules: a wrong JSON type, an integer out of range, an empty string or one outside
    its type's pattern, a null (``InvalidResource``, 422, like the model's own shape
    errors); a control character (``MalformedValue``, 400); a Narrative outside R4's rules
    (``BrokenInvariant``, 400). The error names the element (``Patient.active``) and what it
    must be, never the value."""
    try:
        _object(resource, table_of(model))
    except _Bad as bad:
        path = prefix + "".join(reversed(bad.steps))
        message = bad.message if bad.error is MalformedValue else \
            f"Invalid element {path}: {bad.message}"
        raise bad.error(message, expression=[path]) from None


def table_of(model: Any) -> _Table:
    """What each JSON property of a model holds, from its fields' types; built once."""
    table = _TABLES.get(model)
    if table is None:
        table = {}
        for name, field in model.model_fields.items():
            check = _check_of(field.annotation)
            if check is not None:
                table[field.alias or name] = check
                table[name] = check  # the models take a field's Python name too
        _TABLES[model] = table
    return table


def _check_of(annotation: Any) -> Check | None:
    inner = _element_type(annotation)
    if inner is None:
        return None  # not one FHIR type (fhir_comments): the model judges it
    if inner is bool:
        return _boolean
    if typing.get_origin(inner) is typing.Annotated:
        base, *metadata = typing.get_args(inner)
        for item in metadata:
            name = getattr(item, "__visit_name__", None)
            if isinstance(name, str):
                return _primitive(name)
        return _primitive("uuid") if base is uuid.UUID else None
    if isinstance(inner, type) and issubclass(inner, FhirElementOrResourceBase):
        return _resource
    if isinstance(inner, type) and issubclass(inner, FhirBase):
        return _complex(inner.get_model_klass())
    return None


def _element_type(annotation: Any) -> Any:
    """The type of one item: Optional and List taken off; None for a union of types."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return None
            annotation = args[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _object(node: dict[str, Any], table: _Table) -> None:
    for key, value in node.items():
        check = table.get(key)
        # A model's own property names hold no control character; any other key may,
        # and one that does is named by the element that holds it.
        if check is None and _CONTROL.search(key):
            raise _Bad(MalformedValue, CONTROL_MESSAGE)
        try:
            if check is None:
                # Not an element of the model (resourceType, fhir_comments, or one the
                # model will refuse): only its text is checked here.
                _text(value)
            elif type(value) is list:
                for index, item in enumerate(value):
                    if item is not None:  # a null aligns an array with its _ twin
                        try:
                            check(item)
                        except _Bad as bad:
                            bad.steps.append(f"[{index}]")
                            raise
            elif value is None:
                raise _Bad(InvalidResource, "a FHIR element is never null outside an "
                                            "array; leave it out instead.")
            else:
                check(value)
        except _Bad as bad:
            bad.steps.append(f".{key}")
            raise


def _complex(model: Any) -> Check:
    # The models read a string here as JSON: "subject": "{\"reference\": ...}" was a
    # Reference to them (stored as the string), and "_status": "true" a crash.
    name = str(getattr(model, "__name__", "element"))
    message = ("a primitive's extension (_element) is a JSON object."
               if name == "FHIRPrimitiveExtension" else f"a FHIR {name} is a JSON object.")

    def check(value: Any) -> None:
        if type(value) is not dict:
            raise _Bad(InvalidResource, message)
        _object(value, table_of(model))

    return check


def _resource(value: Any) -> None:
    if type(value) is not dict:
        raise _Bad(InvalidResource, "a resource is a JSON object.")
    inner = _resource_model(value)
    if inner is not None:
        _object(value, table_of(inner))
    else:
        _text(value)  # not a resource the release knows: the model refuses it


def _resource_model(value: dict[str, Any]) -> Any:
    if not isinstance(value.get("resourceType"), str):
        return None
    try:
        return model_class(value["resourceType"])
    except KeyError:
        return None


def _boolean(value: Any) -> None:
    if type(value) is not bool:
        raise _Bad(InvalidResource, "a FHIR boolean is JSON true or false.")


def _decimal(value: Any) -> None:
    if type(value) is not int and type(value) is not float:
        raise _Bad(InvalidResource, "a FHIR decimal is a JSON number.")


def _primitive(kind: str) -> Check:
    """The check of one primitive type, by its R4 name."""
    if kind == "boolean":
        return _boolean
    if kind == "decimal":
        return _decimal
    limits = _INTEGERS.get(kind)
    if limits is not None:
        low, high = limits
        wrong = (f"a FHIR {kind} is a JSON number without a fraction, from {low} to "
                 f"{high}.")

        def integer(value: Any) -> None:
            if type(value) is not int or not low <= value <= high:
                raise _Bad(InvalidResource, wrong)

        return integer
    not_string = f"a FHIR {kind} is a JSON string."
    empty = f"a FHIR {kind} is never an empty string; leave it out instead."
    pattern = _PATTERNS.get(kind)
    mismatch = f"the value does not match R4's pattern for a {kind}."
    xhtml = kind == "xhtml"

    def string(value: Any) -> None:
        if type(value) is not str:
            raise _Bad(InvalidResource, not_string)
        if not value:
            raise _Bad(InvalidResource, empty)
        if _CONTROL.search(value):
            raise _Bad(MalformedValue, CONTROL_MESSAGE)
        if pattern is not None and not pattern(value):
            raise _Bad(InvalidResource, mismatch)
        if xhtml:
            reason = narrative_violation(value)
            if reason is not None:
                raise _Bad(BrokenInvariant, reason)

    return string


def _text(node: Any) -> None:
    """A control character anywhere in JSON the models do not type: keys included."""
    if type(node) is str:
        if _CONTROL.search(node):
            raise _Bad(MalformedValue, CONTROL_MESSAGE)
    elif type(node) is dict:
        for key, value in node.items():
            if _CONTROL.search(key):
                raise _Bad(MalformedValue, CONTROL_MESSAGE)
            try:
                _text(value)
            except _Bad as bad:
                bad.steps.append(f".{key}")
                raise
    elif type(node) is list:
        for index, item in enumerate(node):
            try:
                _text(item)
            except _Bad as bad:
                bad.steps.append(f"[{index}]")
                raise
