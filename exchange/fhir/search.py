"""Parse a FHIR search query into a ``SearchQuery``; anything unknown or malformed is a 400.

Pure functions: no database, no policy. The repository turns a ``SearchQuery`` into SQL.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from exchange.errors import InvalidSearch, UnsupportedSearch
from exchange.fhir.dates import parse_range
from exchange.fhir.ids import ID
from exchange.fhir.search_params import PARAMS, SEARCHABLE_KINDS, VALUE_KINDS, SearchParam
from exchange.fhir.subsumption import NoHierarchy, subsumed
from exchange.fhir.values import NumberValue, parse_number

DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge")
CONTROL_PARAMS = frozenset({"_count", "_offset", "_sort", "_include", "_revinclude",
                            "_summary", "_elements", "_format", "_total", "_pretty"})
SUMMARIES = ("true", "text", "data", "count", "false")
MAX_PARAMETERS = 100  # more is a 400: each becomes a condition in one SQL statement
# The clause a compartment search (``Patient/{id}/{type}``) adds: within that resident's
# record. Not a parameter a query can name (it starts with what no parameter does).
COMPARTMENT_CLAUSE = "@compartment"
_ELEMENT = re.compile(r"[a-z][A-Za-z0-9]*\Z")
_PARAM_NAME = re.compile(r"_?[a-z][a-z0-9-]{0,63}\Z")

# ASCII digits only: str.isdigit() also accepts "¹" and "٣".
DIGITS = re.compile(r"[0-9]{1,9}\Z")


@dataclass(frozen=True)
class TokenValue:
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code of the system


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: datetime
    high: datetime
    zone: tzinfo = UTC  # what a stored value without a zone is read in, as this one was


@dataclass(frozen=True)
class StringValue:
    text: str
    exact: bool


@dataclass(frozen=True)
class ReferenceValue:
    target: str  # "Patient/123"
    # An absolute reference as given (``http://…/Patient/123``), for the gate to tell one
    # of this exchange's from another server's (``exchange.fhir.references``).
    given: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class CompositeValue:
    parts: tuple["Value", ...]  # one per component of the composite parameter


@dataclass(frozen=True)
class MissingValue:
    missing: bool  # ``:missing=true``: the resource has no value for the parameter


Value = (TokenValue | DateValue | StringValue | ReferenceValue | MissingValue | NumberValue
         | CompositeValue | str)


@dataclass(frozen=True)
class Chain:
    target_type: str
    param: SearchParam


@dataclass(frozen=True)
class Clause:
    """One parameter; its values are alternatives (OR). Clauses combine with AND."""

    name: str  # "_id", "_lastUpdated" or a parameter of the resource type
    param: SearchParam | None
    values: tuple[Value, ...]
    chain: Chain | None = None
    modifier: str = ""  # not, text, of-type, contains, exact, above, below, identifier,
    # missing; a reference's target type is folded into its values. On a token, above and
    # below are subsumption (``exchange.fhir.subsumption``); on a uri, path prefixes.


@dataclass(frozen=True)
class Include:
    source_type: str
    param: SearchParam
    target_type: str | None


@dataclass
class SearchQuery:
    resource_type: str
    clauses: list[Clause] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary_count: bool = False
    summary: str | None = None  # true, text or data: which elements each match keeps
    elements: tuple[str, ...] | None = None
    pretty: bool = False
    ignored: list[str] = field(default_factory=list)  # under handling=lenient


def parse_search(resource_type: str, pairs: Iterable[tuple[str, str]], *,
                 default_count: int = 50, max_count: int = 500,
                 lenient: bool = False, zone: tzinfo = UTC) -> SearchQuery:
    """A query; an unknown parameter or modifier is a 400, or under ``lenient`` ignored
    and listed in ``ignored`` (the Bundle says so). A malformed value is always a 400.
    A date without a zone is read in ``zone``, the community's (``Settings.time_zone``)."""
    if resource_type not in PARAMS:
        raise InvalidSearch(f"Searching {resource_type} is not supported.")
    query = SearchQuery(resource_type, count=default_count)
    pairs = list(pairs)
    if len(pairs) > MAX_PARAMETERS or any(raw.count(",") >= MAX_PARAMETERS for _, raw in pairs):
        raise InvalidSearch(f"A search takes at most {MAX_PARAMETERS} parameters, and "
                            f"{MAX_PARAMETERS} values of each.")
    for raw_name, raw_value in pairs:
        try:
            _parse_pair(query, raw_name, raw_value, max_count, zone)
        except UnsupportedSearch:
            if not lenient:
                raise
            query.ignored.append(named(raw_name))
    return query


def _parse_pair(query: SearchQuery, raw_name: str, raw_value: str, max_count: int,
                zone: tzinfo) -> None:
    resource_type = query.resource_type
    known = PARAMS[resource_type]
    if "." in raw_name and not raw_name.startswith("_"):
        if raw_value == "":
            raise InvalidSearch(f"Parameter {raw_name} has no value.")
        query.clauses.append(_parse_chain(resource_type, raw_name, raw_value, zone))
        return
    name, _, modifier = raw_name.partition(":")
    if name in CONTROL_PARAMS:
        if modifier and name not in ("_include", "_revinclude"):
            raise InvalidSearch(f"Parameter {name} takes no modifier.")
        _apply_control(query, raw_name, raw_value, max_count)
        return
    if raw_value == "":
        raise InvalidSearch(f"Parameter {raw_name} has no value.")
    if name == "_id":
        _no_modifier(raw_name, modifier)
        ids = _split(raw_value)
        if not all(ID.match(i) for i in ids):
            raise InvalidSearch("Parameter _id has a malformed id.")
        query.clauses.append(Clause("_id", None, tuple(ids)))
    elif name == "_lastUpdated":
        _no_modifier(raw_name, modifier)
        query.clauses.append(Clause("_lastUpdated", None, tuple(
            _date_value(raw_name, v, zone) for v in _split(raw_value))))
    elif name in known:
        param = known[name]
        values = _values(param, raw_name, modifier, raw_value, zone)
        kept = "" if param.kind == "reference" and modifier in param.targets else modifier
        query.clauses.append(Clause(name, param, values, modifier=kept))
    else:
        raise UnsupportedSearch(f"Unknown search parameter {named(raw_name)} for "
                                f"{resource_type}.")


MODIFIERS: dict[str, frozenset[str]] = {
    "token": frozenset({"not", "text", "of-type", "below", "above"}),
    "uri": frozenset({"below", "above"}),
    "string": frozenset({"exact", "contains"}),
    "date": frozenset(),
    "reference": frozenset({"identifier"}),
}
CONTAINS_LENGTH = 16  # the longest piece of a word the index keeps for :contains


def _values(param: SearchParam, raw_name: str, modifier: str,
            raw_value: str, zone: tzinfo) -> tuple[Value, ...]:
    if param.kind in VALUE_KINDS:
        if modifier:
            raise UnsupportedSearch(f"Modifier :{modifier} is not supported on "
                                    f"{param.name}.")
        if param.kind == "composite":
            return tuple(_composite_value(param, raw_name, v, zone)
                         for v in _split(raw_value))
        return tuple(parse_number(v, param.kind == "quantity") for v in _split(raw_value))
    if param.kind not in SEARCHABLE_KINDS:
        raise UnsupportedSearch(f"Searching by {param.name} ({param.kind}) is not "
                                "supported.")
    if modifier == "missing":
        if raw_value not in ("true", "false"):
            raise InvalidSearch(f"Parameter {param.name}:missing is true or false.")
        return (MissingValue(raw_value == "true"),)
    allowed = MODIFIERS[param.kind] | (set(param.targets) if param.kind == "reference"
                                       else set())
    if modifier and modifier not in allowed:
        raise UnsupportedSearch(f"Modifier :{modifier} is not supported on "
                                f"{param.name}.")
    values = _split(raw_value)
    if param.kind == "token":
        if modifier == "text":
            return tuple(StringValue(v, False) for v in values)
        if modifier in ("below", "above"):
            return _subsumption_values(param, modifier, values)
        if modifier == "of-type":
            if not all(v.count("|") == 2 and all(v.split("|")) for v in values):
                raise InvalidSearch(f"{param.name}:of-type is system|code|value.")
            return tuple(values)
        return tuple(_token_value(v) for v in values)
    if param.kind == "uri":
        return tuple(TokenValue(None, v) for v in values)
    if param.kind == "date":
        return tuple(_date_value(raw_name, v, zone) for v in values)
    if param.kind == "string":
        if modifier == "contains" and any(len(w) > CONTAINS_LENGTH
                                          for v in values for w in v.split()):
            raise InvalidSearch(f"{param.name}:contains finds pieces of words of at most "
                                f"{CONTAINS_LENGTH} characters.")
        return tuple(StringValue(v, modifier == "exact") for v in values)
    if modifier == "identifier":
        return tuple(_token_value(v) for v in values)
    return tuple(r for v in values for r in _reference_values(param, modifier, v))


def _subsumption_values(param: SearchParam, modifier: str,
                        values: list[str]) -> tuple[Value, ...]:
    """``code:below=http://hl7.org/fhir/sid/icd-10|F32``: codes whose hierarchy the
    exchange knows (``exchange.fhir.subsumption``), each with its system; the terms they
    expand into are bounded like the values a query may list."""
    tokens = tuple(_token_value(v) for v in values)
    size = 0
    for token in tokens:
        if not token.system or not token.code:
            # not malformed (a plain search takes it) but a search this exchange cannot
            # make: unsupported, which lenient handling may ignore and name
            raise UnsupportedSearch(f"{param.name}:{modifier} needs system|code: "
                                    "subsumption is within a code system.")
        try:
            size += subsumed(modifier, token.system, token.code).size
        except NoHierarchy as why:
            raise UnsupportedSearch(f"{param.name}:{modifier}: {why}.") from None
    if size > MAX_PARAMETERS:
        raise InvalidSearch(f"{param.name}:{modifier} expands to more than "
                            f"{MAX_PARAMETERS} search terms; ask for a narrower code.")
    return tokens


def _composite_value(param: SearchParam, raw_name: str, value: str,
                     zone: tzinfo) -> CompositeValue:
    """``http://loinc.org|8480-6$gt140``: one value per component, joined by ``$``."""
    pieces = value.split("$")
    if len(pieces) != len(param.components) or not all(pieces):
        raise InvalidSearch(f"{param.name} takes {len(param.components)} values joined "
                            "by $.")
    parts: list[Value] = []
    for (kind, _), piece in zip(param.components, pieces, strict=True):
        if kind == "token":
            parts.append(_token_value(piece))
        elif kind in ("quantity", "number"):
            parts.append(parse_number(piece, kind == "quantity"))
        elif kind == "string":
            parts.append(StringValue(piece, False))
        elif kind == "date":
            parts.append(_date_value(raw_name, piece, zone))
        else:
            raise UnsupportedSearch(f"{param.name} has a {kind} component, which is not "
                                    "supported.")
    return CompositeValue(tuple(parts))


def _token_value(value: str) -> TokenValue:
    if "|" not in value:
        return TokenValue(None, value)
    system, _, code = value.partition("|")
    if "|" in code:
        raise InvalidSearch("A token has at most one '|'.")
    if not system and not code:
        raise InvalidSearch("A token needs a system or a code.")
    return TokenValue(system, code or None)


def _date_value(raw_name: str, value: str, zone: tzinfo) -> DateValue:
    prefix = "eq"
    if value[:2] in DATE_PREFIXES:
        prefix, value = value[:2], value[2:]
    try:
        low, high = parse_range(value, zone)
    except ValueError:
        raise InvalidSearch(f"Parameter {raw_name} has a malformed date.") from None
    return DateValue(prefix, low, high, zone)


def _reference_values(param: SearchParam, modifier: str,
                      value: str) -> list[ReferenceValue]:
    """``Type/id`` as given; a bare id is the id of any type the parameter may point at
    (or of the one its modifier names): alternatives, like values joined by commas."""
    given = None
    if "/" in value:
        rtype, _, rid = value.rpartition("/")
        types = [rtype.rsplit("/", 1)[-1]]  # an absolute URL: its Type/id, and its base
        given = value if "/" in rtype else None
    else:
        rid, types = value, [modifier] if modifier else list(param.targets)
    if not all(t in param.targets for t in types) or not ID.match(rid):
        raise InvalidSearch(f"Parameter {param.name} has a malformed reference.")
    return [ReferenceValue(f"{t}/{rid}", given) for t in types]


def _parse_chain(resource_type: str, name: str, raw_value: str, zone: tzinfo) -> Clause:
    link, _, tail = name.partition(".")
    head, _, modifier = link.partition(":")
    ref_param = PARAMS[resource_type].get(head)
    if ref_param is None or ref_param.kind != "reference" or "." in tail:
        raise InvalidSearch(f"Chained parameter {name} is not supported.")
    target_type = modifier or (ref_param.targets[0] if len(ref_param.targets) == 1 else "")
    if target_type not in ref_param.targets:
        raise InvalidSearch(f"Chained parameter {name} needs a target type.")
    target = PARAMS.get(target_type, {}).get(tail)
    if target is not None and target.kind in VALUE_KINDS:
        raise UnsupportedSearch(f"A chain does not end in a value ({named(tail)}).")
    if target is None or target.kind == "reference":
        raise InvalidSearch(f"Chained parameter {name} is not supported.")
    return Clause(name, ref_param, _values(target, name, "", raw_value, zone),
                  Chain(target_type, target))


def _apply_control(query: SearchQuery, raw_name: str, value: str, max_count: int) -> None:
    name = raw_name.partition(":")[0]
    if name in ("_count", "_offset"):
        if not DIGITS.match(value):
            raise InvalidSearch(f"Parameter {name} must be a non-negative integer.")
        if name == "_count":
            query.count = min(int(value), max_count)
        else:
            query.offset = int(value)
    elif name == "_sort":
        query.sort = [_sort_key(query.resource_type, key) for key in _split(value)]
    elif name in ("_include", "_revinclude"):
        if raw_name.partition(":")[2] not in ("", "iterate"):
            raise InvalidSearch(f"Modifier on {name} is not supported.")
        include = _include(value)
        if name == "_include" and include.source_type != query.resource_type:
            raise InvalidSearch("_include must start from the searched type.")
        (query.includes if name == "_include" else query.revincludes).append(include)
    elif name == "_summary":
        if value not in SUMMARIES:
            raise InvalidSearch("Parameter _summary is true, text, data, count or false.")
        query.summary_count = value == "count"
        query.summary = value if value in ("true", "text", "data") else None
    elif name == "_pretty":
        if value not in ("true", "false"):
            raise InvalidSearch("Parameter _pretty is true or false.")
        query.pretty = value == "true"
    elif name == "_elements":
        elements = tuple(_split(value))
        if not all(_ELEMENT.match(e) for e in elements):
            raise InvalidSearch("Parameter _elements lists malformed element names.")
        query.elements = elements
    elif name == "_format":
        if value not in ("json", "application/fhir+json", "application/json"):
            raise InvalidSearch("Only JSON is supported.")
    elif name == "_total" and value not in ("accurate", "none", "estimate"):
        raise InvalidSearch("Parameter _total must be accurate, none or estimate.")


def _sort_key(resource_type: str, key: str) -> tuple[str, bool]:
    descending = key.startswith("-")
    name = key[1:] if descending else key
    if name in ("_id", "_lastUpdated"):
        return name, descending
    param = PARAMS[resource_type].get(name)
    if param is None or param.kind != "date":
        # a parameter's name is echoed to help; anything else might be data, and is not
        raise InvalidSearch(f"Sorting by {named(name)} is not supported.")
    return name, descending


def _include(value: str) -> Include:
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise InvalidSearch("An include is Type:parameter[:TargetType].")
    source, param_name = parts[0], parts[1]
    param = PARAMS.get(source, {}).get(param_name)
    if param is None or param.kind != "reference":
        raise InvalidSearch("The include names no reference parameter.")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in param.targets:
        raise InvalidSearch("The include's target type does not fit its parameter.")
    return Include(source, param, target)


def named(raw: str) -> str:
    """A parameter's name, echoed to help the caller; anything that does not look like one
    might be data a client put in the wrong place, and is not echoed."""
    return raw if _PARAM_NAME.match(raw.partition(":")[0]) and len(raw) <= 80 else "(not shown)"


def _no_modifier(raw_name: str, modifier: str) -> None:
    if modifier:
        raise InvalidSearch(f"Modifier on {raw_name} is not supported.")


def _split(value: str) -> list[str]:
    """Split on commas that are not escaped with a backslash, then unescape."""
    parts = re.split(r"(?<!\\),", value)
    out = [p.replace("\\,", ",").replace("\\|", "|") for p in parts]
    if any(p == "" for p in out):
        raise InvalidSearch("A parameter value is empty.")
    return out
