"""Which literal references name this exchange's own records.

One reading for the write that checks a reference and for the store that files and
indexes it: a reference the validator lets through as local is the one the store files
under that record, and one it calls another server's is never filed here. An absolute
``http://other.example/fhir/Patient/alice`` was filed under the local resident ``alice``.

A reference is RESTful when it matches R4's regex (references.html#literal): an optional
``http(s)://`` base, then ``Type/id`` of an R4 resource type, optionally
``/_history/vid``. Relative ones are this server's. Absolute ones are when their base is
the exchange's FHIR base or one the operator names as an alias (``server_aliases``);
others are another server's. Anything else (``#id``, ``urn:uuid:``, ``urn:oid:``, a URL
that is not RESTful) names no record of any server's RESTful API.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

# R4's regex, with the type list taken from the generated tree rather than spelt out.
_RESTFUL = re.compile(
    r"(?P<base>https?://(?:[A-Za-z0-9\-\\.:%$]*/)+)?"
    r"(?P<type>[A-Z][A-Za-z]{0,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?")


@cache
def _resource_types() -> frozenset[str]:
    # Imported here, not above: the tree imports the invariants, which import this module.
    from exchange.fhir.element_tree import element_tree

    return element_tree().resource_types


def normalize_base(url: str) -> str:
    """A base as compared: without trailing slashes, its scheme and host in lower case
    (they are case-insensitive; the path is not)."""
    url = url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{slash}{path}"


@dataclass(frozen=True, slots=True)
class RestfulReference:
    base: str | None  # None for a relative reference
    target: str  # Type/id, any version dropped


def restful(value: Any) -> RestfulReference | None:
    """The parts of a RESTful literal reference (a string), else None."""
    if not isinstance(value, str):
        return None
    match = _RESTFUL.fullmatch(value)
    if match is None or match["type"] not in _resource_types():
        return None
    base = match["base"]
    return RestfulReference(normalize_base(base) if base else None,
                            f"{match['type']}/{match['id']}")


def reference_type(value: Any) -> str | None:
    """The resource type a Reference element (a dict) points at, on whatever server: what
    a search parameter's target type selects on."""
    ref = restful(value.get("reference")) if isinstance(value, dict) else None
    return ref.target.split("/", 1)[0] if ref is not None else None


@dataclass(frozen=True, slots=True)
class LocalBases:
    """The base URLs that name this exchange: its FHIR base and the operator's aliases."""

    bases: frozenset[str] = frozenset()

    @classmethod
    def of(cls, fhir_base: str, aliases: Iterable[str] = ()) -> "LocalBases":
        return cls(frozenset(normalize_base(b) for b in (fhir_base, *aliases) if b))

    def local(self, reference: Any) -> str | None:
        """``Type/id`` of the local record a literal reference (a string) names, else None."""
        ref = restful(reference)
        if ref is None or (ref.base is not None and ref.base not in self.bases):
            return None
        return ref.target

    def foreign(self, reference: Any) -> bool:
        """Whether a literal reference is a RESTful URL of another server."""
        ref = restful(reference)
        return ref is not None and ref.base is not None and ref.base not in self.bases


# Where nothing names the exchange (a unit test's store): only relative references are
# local, so an absolute one is never filed under a record by guess.
RELATIVE_ONLY = LocalBases()
