"""R4 invariants that matter for safety, one pure function per data type.

Each returns ``None`` when the value holds, else the name of the offending child element and
a message in the exchange's own words (never the value, which may be patient data).

* Reference (``ref-1`` and the format of ``Reference.reference``): a relative ``Type/id``
  (optionally ``/_history/vid``) of an R4 resource type, an absolute http(s) URL, a
  ``urn:uuid:`` or ``urn:oid:``, or ``#id`` of a resource contained in the same resource.
  An absolute URL in R4's RESTful form must be under this exchange's base or an alias of
  it (``exchange.fhir.references``): another server's ``Patient/alice`` is not ours.
  A reference that resolves nowhere, or somewhere unintended, is how a record ends up in
  the wrong resident's file.
* Quantity (and Age, Count, Distance, Duration): a comparator, unit or code says what a
  value means, so it needs the value; a code needs its system (``qty-3``).
* Period (``per-1``): start is not after end.
"""

import re
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from typing import Any

from exchange.fhir.dates import parse_range
from exchange.fhir.references import RELATIVE_ONLY, LocalBases

Violation = tuple[str, str] | None  # (child element, message)

_RELATIVE = re.compile(
    r"(?P<type>[A-Z][A-Za-z]{0,63})/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?")
_ABSOLUTE = re.compile(r"https?://[^\s/?#]+[^\s]*")
_UUID = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_OID = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+")
# A date without a time has no zone: its day may begin up to 14 hours either side of UTC.
_ZONE_SLACK = timedelta(hours=14)


def reference_violation(reference: Mapping[str, Any], resource_types: Collection[str],
                        contained_ids: Collection[str],
                        here: LocalBases = RELATIVE_ONLY) -> Violation:
    """``here``: the bases that name this exchange; an absolute RESTful URL under any
    other is refused, so that nothing is filed under a local record by another's id."""
    value = reference.get("reference")
    if not isinstance(value, str):
        return None  # a logical reference (identifier) or a display only
    if value.startswith("#"):
        # "#" alone points at the containing resource, from within a contained one.
        if value == "#" or value[1:] in contained_ids:
            return None
        return "reference", "A local reference must name a contained resource."
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        if relative["type"] in resource_types:
            return None
        return "reference", "A relative reference must start with an R4 resource type."
    if here.foreign(value):
        return "reference", ("A reference to another server's record is not accepted: an "
                             "absolute reference must be under this exchange's base (or a "
                             "base the operator names as its alias).")
    if _ABSOLUTE.fullmatch(value) or _UUID.fullmatch(value) or _OID.fullmatch(value):
        return None
    return "reference", ("A reference must be Type/id, an absolute URL, a urn:uuid:, "
                         "a urn:oid: or #id of a contained resource.")


def quantity_violation(quantity: Mapping[str, Any]) -> Violation:
    if "value" not in quantity and "_value" not in quantity and (
            "comparator" in quantity or "unit" in quantity or "code" in quantity):
        return "value", "A Quantity with a comparator, unit or code needs a value."
    if "code" in quantity and "system" not in quantity:
        return "system", "A Quantity with a code needs the code's system."
    return None


def period_violation(period: Mapping[str, Any]) -> Violation:
    start, end = period.get("start"), period.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    # Two dates compare as calendar days; a date against a time of day, with slack.
    slack = _ZONE_SLACK if ("T" in start) != ("T" in end) else timedelta(0)
    try:
        earliest_start = parse_range(start)[0] - slack
        latest_end = parse_range(end)[1] + slack
    except (ValueError, OverflowError):
        return None  # the model has judged the format; an unbounded year is not ours to fault
    if earliest_start >= latest_end:
        return "start", "A Period must not start after it ends."
    return None


QUANTITIES = ("Quantity", "Age", "Count", "Distance", "Duration")
CHECKED_TYPES = frozenset({"Reference", "Period", *QUANTITIES})


def datatype_invariants() -> dict[str, Callable[[Mapping[str, Any]], Violation]]:
    """The data types whose every instance is checked, and how (references need context)."""
    checks: dict[str, Callable[[Mapping[str, Any]], Violation]] = {
        t: quantity_violation for t in QUANTITIES}
    checks["Period"] = period_violation
    return checks
