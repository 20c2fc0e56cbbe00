"""What the audit trail keeps of a request's query string and path: the shape of the
question (which parameters, which modifiers, codes, dates of records, paging), never a
value that identifies a person.

The rule, per ``name[:modifier]=value`` pair:

* a value that may name a resident (``Patient/id``, or a bare id, in any reference
  parameter: ``patient=alice``, ``subject=Patient/alice``; ``_id`` of a Patient search)
  becomes ``[resident:<reference>]``, the resident's ledger reference
  (``Vault.resident_reference``: a pseudonym keyed by their own data key, so that after
  their erasure no one can tell whose it was), or ``[withheld]`` where no resident has
  that id (none ever did, or they were erased);
* a value that describes a person is ``[withheld]``: every string parameter (names,
  addresses, free text), identifiers of any kind, telecom (phone, email), birth and
  death dates, chains (``patient.name=…``), reverse chains (``_has:…``), text modifiers
  (``:text``, ``:contains``, ``:exact``) and reference ``:identifier``;
* a parameter the exchange does not know is withheld whole, name and value, since a
  name it does not know may itself be data a client put in the wrong place;
* everything else is kept as sent: codes, statuses, dates of records, quantities,
  typed references to other records (``encounter=Encounter/e1``), another type's
  ``_id``, result parameters (``_count``, ``_sort``, …).

In a path, the id after ``/fhir/Patient/`` is replaced the same way (``[resident:…]`` or
``[withheld]``); other segments are kept.
"""

import re
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote_plus

from exchange.fhir.search import CONTROL_PARAMS
from exchange.fhir.search_params import PARAMS, SUPPORTED_TYPES, SearchParam

WITHHELD = "[withheld]"
Reference = Callable[[str], "str | None"]  # a resident's id -> their ledger reference

# Result and meta parameters whose values are about the answer or the records, not a
# person (``_text``, ``_content``, ``_filter``, ``_query`` and ``_list`` are not here).
_KEPT = CONTROL_PARAMS | {"_type", "_since", "_at", "_lastUpdated", "_tag", "_security",
                          "_profile", "_source", "_contained", "_containedType"}
# Elements whose values describe or reach a person, wherever a parameter reads them.
_PERSONAL_ROOTS = frozenset({
    "identifier", "masterIdentifier", "accessionIdentifier", "groupIdentifier",
    "telecom", "name", "address", "birthDate", "deceasedDateTime", "contact", "photo",
    "extension"})
_TEXT_MODIFIERS = frozenset({"text", "contains", "exact", "identifier", "of-type"})
_NAME = re.compile(r"_?[A-Za-z][A-Za-z0-9-]{0,63}\Z")
_ID = re.compile(r"[A-Za-z0-9.\-]{1,64}\Z")
_TYPED = re.compile(r"(?:.*/)?([A-Z][A-Za-z]{1,63})/([^/]+)(?:/_history/[^/]*)?\Z")
_PATIENT_PATH = re.compile(r"(.*?/fhir/Patient/)([^/]+)(.*)\Z", re.DOTALL)
_ALL_TYPES = tuple(PARAMS)


def resident_mark(resident: str, reference: Reference) -> str:
    found = reference(resident) if _ID.match(resident) else None
    return f"[resident:{found}]" if found else WITHHELD


def scrub_path(path: str, reference: Reference) -> str:
    match = _PATIENT_PATH.match(path)
    if match is None or match.group(2).startswith(("_", "$")):
        return path  # not a resident's (type-level ``_search``, ``_history``, ``$op``)
    return match.group(1) + resident_mark(match.group(2), reference) + match.group(3)


def scrub_query(query: str, resource_type: str | None, reference: Reference) -> str:
    """``query`` (as sent, percent-encoded) with identifying values replaced."""
    if not query:
        return query
    types = (resource_type,) if resource_type in PARAMS else _ALL_TYPES
    out = []
    for pair in query.split("&"):
        raw_key, eq, raw_value = pair.partition("=")
        key = unquote_plus(raw_key)
        value = unquote_plus(raw_value)
        treatment = _treatment(key, types)
        if treatment == "unknown":
            out.append(f"{WITHHELD}={WITHHELD}" if eq else WITHHELD)
        elif treatment == "keep" or not eq:
            out.append(pair)
        elif treatment == "withhold":
            out.append(f"{raw_key}={WITHHELD}")
        else:
            items = [resident_mark(item, reference) if treatment == "resident" else
                     _reference_item(item, reference, treatment == "reference")
                     for item in re.split(r"(?<!\\),", value)]
            out.append(f"{raw_key}=" + ",".join(items))
    return "&".join(out)


def _treatment(key: str, types: Iterable[str]) -> str:
    """keep | withhold | unknown | resident (every item names a resident) | reference
    (an item may name a resident or another record) | record-reference (every item
    names a record of a type other than Patient: another type's ``_id``)."""
    if key.startswith("_has:"):
        return "withhold" if _NAME.match(key.split(":")[-1]) else "unknown"
    name, _, modifier = key.partition(":")
    if "." in name or "." in modifier:
        head = name.split(".", 1)[0]
        return "withhold" if _NAME.match(head) else "unknown"
    if not _NAME.match(name):
        return "unknown"
    if name in _KEPT or modifier == "missing" or (modifier[:1].isupper() and \
            modifier != "Patient"):  # a reference to another type's records
        return "keep"
    if name == "_id":  # a Patient's is a resident's id; another type's a record's
        return "resident" if "Patient" in types else "record-reference"
    params = [PARAMS[t][name] for t in types if name in PARAMS[t]]
    if not params:
        return "unknown"
    if modifier in _TEXT_MODIFIERS or any(_personal(p) for p in params):
        return "withhold"
    if any(p.kind == "reference" for p in params):
        # A bare id may always be a resident's (the generated targets of a parameter do
        # not always name Patient where the element holds one): only typed references
        # to other records are kept.
        return "reference"
    return "keep"


def _personal(param: SearchParam) -> bool:
    return param.kind == "string" or "identifier" in param.name or \
        bool(param.roots & _PERSONAL_ROOTS)


def _reference_item(item: str, reference: Reference, may_be_resident: bool) -> str:
    """One item of a reference parameter: ``Patient/id`` (or a bare id, where the
    parameter may point at a Patient) is a resident's mark, or withheld (an id no
    resident has may be an erased one's); a reference to another type's record, or a
    bare id where no Patient is meant, is kept; anything else is withheld."""
    typed = _TYPED.match(item)
    if typed is not None:
        rtype, rid = typed.groups()
        if rtype == "Patient":
            return resident_mark(rid, reference)
        return _quoted(item) if rtype in SUPPORTED_TYPES and _ID.match(rid) else WITHHELD
    if may_be_resident:
        return resident_mark(item, reference)
    return _quoted(item) if _ID.match(item) else WITHHELD


def _quoted(item: str) -> str:
    return quote(item, safe="/:|.-_")
