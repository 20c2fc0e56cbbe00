"""What a resource contributes to the search indexes, and to whose record it belongs."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from exchange.fhir.dates import FAR_FUTURE, FAR_PAST, parse_range, period_range
from exchange.fhir.fhirpath import evaluate
from exchange.fhir.references import RELATIVE_ONLY, LocalBases, reference_type
from exchange.fhir.search import CONTAINS_LENGTH
from exchange.fhir.search_params import COMPARTMENT, PARAMS, SEARCHABLE_KINDS, SearchParam
from exchange.fhir.subsumption import placed_terms
from exchange.privacy.blind_index import BlindIndex, normalize_text

MAX_PREFIX = 32
SECURITY = "_security"  # security labels, indexed so withholding happens in SQL
# The local records a resource points at where no search parameter indexes the pointer
# (a Claim's diagnosisReference): no search reads this key, but a label that a record
# gains finds through it every record it reaches (exchange/gate/labelling.py).
REFERS = "_refers"
_NOT_TEXT = frozenset({"use", "type", "period", "extension", "id"})
# Every record holds as many ``_security`` rows as every other, labelled or not: a copy
# of the database that counted them would otherwise name the records, and so the
# residents, with a sensitive label. A label is three rows (``*|PSY``, its system's
# ``…|PSY`` and ``…|*``), a second of the same system two more: five hold any two of the
# labels the policies give (``labels``: all of v3-ActCode). Five, not more: every row is
# paid for by every record on its way in. The rest of the five are fillers
# (``security_fillers``); a record with more rows (three labels, or a writer's
# confidentiality code beside one) keeps them all, and its count then shows.
SECURITY_ROWS = 5


@dataclass
class IndexEntries:
    terms: list[tuple[str, str]] = field(default_factory=list)  # (param, blind term)
    dates: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    references: list[tuple[str, str]] = field(default_factory=list)  # (param, "Type/id")


def values_at(node: Any, path: str) -> Iterator[Any]:
    """Every value at a dotted path, stepping into each item of a list."""
    current = [node]
    for step in path.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, dict) and step in item:
                value = item[step]
                nxt.extend(value if isinstance(value, list) else [value])
        current = nxt
    yield from current


def param_values(resource: dict[str, Any], param: SearchParam) -> Iterator[Any]:
    """The values a search parameter finds in a resource: by its compiled steps, or by
    evaluating its FHIRPath expression when it has none."""
    if not param.steps:
        # FHIRPath is slow; most resources lack the element it would read at all
        if any(key.startswith(root) for key in resource for root in param.roots):
            yield from evaluate(resource, param.expression)
        return
    for step in param.steps:
        for value in values_at(resource, step.path):
            if step.where is not None and not (
                    isinstance(value, dict) and value.get(step.where[0]) == step.where[1]):
                continue
            # A target type selects by the type a reference names, on whatever server;
            # whether that is a record of this exchange is the caller's to judge (by its
            # LocalBases), so that one reading decides it everywhere.
            if step.target is not None and reference_type(value) != step.target:
                continue
            yield extension_value(value) if step.where and step.where[0] == "url" else value


def extension_value(extension: Any) -> Any:
    """An Extension's ``value[x]``: what a parameter defined on an extension searches."""
    if isinstance(extension, dict):
        for key, value in extension.items():
            if key.startswith("value"):
                return value
    return extension


def relative_reference(value: Any, here: LocalBases) -> str | None:
    """``Type/id`` of the local record a Reference element (a dict) names, else None: a
    relative reference, or an absolute one under a base of ``here``. The very reading the
    validator judges references by (``exchange.fhir.references``), so that what it let
    through as another server's is never filed here."""
    return here.local(value.get("reference")) if isinstance(value, dict) else None


def compartment_of(resource: dict[str, Any], here: LocalBases) -> str | None:
    """The resident whose record this resource is part of, or None for directory resources:
    the first resident named by the type's Patient-compartment parameters, in the order
    that puts whom the resource is about before its author or payer. Only a reference
    to a record of this exchange (``here``) names a resident."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) else None
    for param in COMPARTMENT.get(str(rtype), ()):
        for value in param_values(resource, param):
            ref = relative_reference(value, here)
            if ref and ref.startswith("Patient/"):
                return ref.split("/", 1)[1]
    return None


def referenced(node: Any, here: LocalBases) -> Iterator[str]:
    """Every local record ``node`` refers to, as ``Type/id``, wherever the reference is."""
    if isinstance(node, dict):
        ref = relative_reference(node, here)
        if ref is not None:
            yield ref
        for value in node.values():
            yield from referenced(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from referenced(item, here)


def names_a_resident(node: Any) -> bool:
    """Whether any reference anywhere in ``node`` points at a Patient, of this server or
    another (a person either way), or it contains one."""
    if isinstance(node, dict):
        if reference_type(node) == "Patient":
            return True
        if node.get("resourceType") in ("Patient", "RelatedPerson"):
            return True
        return any(names_a_resident(v) for v in node.values())
    if isinstance(node, list):
        return any(names_a_resident(v) for v in node)
    return False


def token_pairs(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value.get("coding") or []:
                yield from token_pairs(coding)
        code = value.get("code", value.get("value"))
        if isinstance(code, str):
            system = value.get("system")
            yield (system if isinstance(system, str) else None), code


def token_terms(param: str, system: str | None, code: str) -> list[str]:
    if system is None:
        return [f"*|{code}", f"|{code}"]
    return [f"*|{code}", f"{system}|{code}", f"{system}|*"]


def string_terms(text: str) -> set[str]:
    normalized = normalize_text(text)
    terms = {"=" + normalized}
    for word in {normalized, *normalized.split()}:
        for end in range(1, min(len(word), MAX_PREFIX) + 1):
            terms.add("^" + word[:end])
    return terms


def index_entries(resource: dict[str, Any], blind: BlindIndex, zone: tzinfo = UTC,
                  here: LocalBases = RELATIVE_ONLY, owner: str | None = None) -> IndexEntries:
    """What the store indexes of ``resource``; a date without a zone is read in ``zone``,
    and a reference is indexed as the local record it names by ``here``. Terms are keyed
    by the resident whose record it is: ``owner``, else the one its references name (none
    for the directory), so that the same term in two records never reads alike."""
    entries = IndexEntries()
    rtype = str(resource.get("resourceType"))
    if owner is None:
        owner = compartment_of(resource, here)
    plain: set[tuple[str, str]] = set()  # (index key, term) before blinding, each once
    for param in _reading(rtype, resource.keys()):
        for value in param_values(resource, param):
            plain.update(_terms(param, value))
            if param.kind == "date":
                span = date_span(value, zone)
                if span is not None:
                    if is_person_date(rtype, param.name):
                        plain.update((param.name, t) for t in calendar_terms(*span, zone))
                        span = coarse_span(*span, zone)
                    else:
                        day = day_term(*span, zone)
                        if day is not None:
                            plain.add((param.name, day))
                        span = month_span(*span, zone)
                    entries.dates.append((param.name, *span))
            elif param.kind == "reference":
                ref = relative_reference(value, here)
                if ref is not None:
                    entries.references.append((param.name, ref))
    for label in values_at(resource, "meta.security"):
        for system, code in token_pairs(label):
            plain.update((SECURITY, t) for t in token_terms(SECURITY, system, code))
    labels = sum(1 for key, _ in plain if key == SECURITY)
    entries.terms = sorted([*((key, blind.owned(owner, key, term)) for key, term in plain),
                            *((SECURITY, term) for term in security_fillers(
                                blind, owner, f"{rtype}/{resource.get('id')}", labels))])
    indexed = {target for _, target in entries.references}
    own = f"{resource.get('resourceType')}/{resource.get('id')}"
    entries.references.extend((REFERS, target) for target in referenced(resource, here)
                              if target not in indexed and target != own)
    entries.references = sorted(set(entries.references))  # a union names each once
    entries.dates = sorted(set(entries.dates))
    return entries


def security_fillers(blind: BlindIndex, owner: str | None, record: str,
                     labels: int) -> list[str]:
    """The filler terms under ``_security`` of a record (``Type/id``) of ``owner``'s that
    has ``labels`` rows of its own there: slots ``labels`` to ``SECURITY_ROWS - 1``, keyed
    by the record (``BlindIndex.fillers``), so that indexing it again writes the same
    rows and no two records share one. A record with no label holds slot 0
    (``unlabelled_marker``); one with any label does not."""
    return blind.fillers(owner, SECURITY, record, SECURITY_ROWS)[labels:] \
        if labels < SECURITY_ROWS else []


def unlabelled_marker(blind: BlindIndex, owner: str | None, record: str) -> str:
    """The term only a record with no security label holds: its filler of slot 0. Asked
    record by record (it is keyed by the record), where SQL needs to know whether a
    record is labelled (``:missing``, ``exchange.store.dependents``), since a row of its
    own no longer tells."""
    return blind.fillers(owner, SECURITY, record, 1)[0]


def _reading(rtype: str, elements: Iterable[str]) -> list[SearchParam]:
    """The indexed parameters that read any of these top-level elements, each once, in the
    type's order: most of a type's parameters read elements a resource lacks."""
    by_root, unrooted = _BY_ROOT.get(rtype, ({}, ()))
    found = {p.name: p for e in elements for p in by_root.get(e, ())}
    found.update((p.name, p) for p in unrooted)
    return [found[n] for n in sorted(found)]


def _by_root(params: dict[str, SearchParam]) -> tuple[dict[str, list[SearchParam]],
                                                      tuple[SearchParam, ...]]:
    """The parameters indexed under their own name (of the kinds kept in the index, not
    made of others' parts), by the top-level elements their steps read; and those read
    by a FHIRPath expression, which are asked of every resource."""
    by_root: dict[str, list[SearchParam]] = {}
    unrooted = []
    for param in params.values():
        if param.kind not in SEARCHABLE_KINDS or param.parts:
            continue
        if not param.steps:
            unrooted.append(param)
        for root in param.roots if param.steps else ():
            by_root.setdefault(root, []).append(param)
    return by_root, tuple(unrooted)


_BY_ROOT = {rtype: _by_root(params) for rtype, params in PARAMS.items()}


# The index keys of the modifiers, beside a parameter's own: ``code:text`` holds the words
# of a code's display and text, ``name:contains`` every piece of a name's words,
# ``identifier:of-type`` an identifier's type with its value, ``subject:identifier`` the
# identifier a reference carries. A uri's own key also holds its path prefixes (``:below``).
# ``code:below`` holds where an ICD-10 code sits in its hierarchy, which ``:below`` and
# ``:above`` on the token ask (``exchange.fhir.subsumption.placed_terms``); HL7's own code
# systems are expanded at query time and need nothing indexed.


def modifier_key(param: str, modifier: str) -> str:
    return f"{param}:{modifier}"


def _terms(param: SearchParam, value: Any) -> Iterator[tuple[str, str]]:
    """(index key, term) pairs a value gives: its own and its modifiers'."""
    name = param.name
    if param.kind in ("token", "uri"):
        for system, code in token_pairs(value):
            for term in token_terms(name, system, code):
                yield name, term
            if param.kind == "uri":
                for prefix in uri_prefixes(code):
                    yield name, "b^" + prefix
            else:
                for term in placed_terms(system, code):
                    yield modifier_key(name, "below"), term
        if param.kind == "token" and isinstance(value, dict):
            for text in display_texts(value):
                for term in word_terms(text):
                    yield modifier_key(name, "text"), term
            kind = value.get("type")
            if isinstance(kind, dict) and isinstance(value.get("value"), str):
                for system, code in token_pairs(kind):
                    yield modifier_key(name, "of-type"), f"{system}|{code}|{value['value']}"
    elif param.kind == "string":
        for text in strings_of(value):
            for term in string_terms(text):
                yield name, term
            for piece in contained_pieces(text):
                yield modifier_key(name, "contains"), "~" + piece
    elif param.kind == "reference" and isinstance(value, dict):
        identifier = value.get("identifier")
        for system, code in token_pairs(identifier) if isinstance(identifier, dict) else ():
            for term in token_terms(name, system, code):
                yield modifier_key(name, "identifier"), term


def word_terms(text: str) -> set[str]:
    """A code's text as ``:text`` finds it: each whole word (a query of several words
    needs each). Not every prefix, as a string parameter keeps: a code's display is a
    label, not a name typed letter by letter, and its prefixes were four in five of all
    the terms indexed."""
    return {"^" + word[:MAX_PREFIX] for word in normalize_text(text).split()}


def display_texts(value: dict[str, Any]) -> Iterator[str]:
    """The human words of a code: a CodeableConcept's text, each Coding's display."""
    if isinstance(value.get("text"), str):
        yield value["text"]
    if isinstance(value.get("display"), str):
        yield value["display"]
    for coding in value.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("display"), str):
            yield coding["display"]


def uri_prefixes(uri: str) -> list[str]:
    """``http://a.org/fhir/x`` -> ``http://a.org``, ``http://a.org/fhir``, the whole: what
    ``:below`` and ``:above`` compare, path segment by path segment."""
    head, sep, path = uri.partition("://")
    if not sep:
        return [uri]
    parts = path.split("/")
    return [f"{head}://{'/'.join(parts[:i])}" for i in range(1, len(parts) + 1)]


def contained_pieces(text: str) -> set[str]:
    """Every piece of every word, up to ``CONTAINS_LENGTH`` characters: what ``:contains``
    finds (within a word; a query of several words needs each in the text)."""
    pieces = set()
    for word in normalize_text(text).split():
        for start in range(len(word)):
            for end in range(start + 1, min(len(word), start + CONTAINS_LENGTH) + 1):
                pieces.add(word[start:end])
    return pieces


def strings_of(value: Any) -> Iterator[str]:
    """The text a string parameter searches: the string itself, or every part of a
    HumanName or an Address (family, given, line, city, ...), not their codes."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _NOT_TEXT:
                for part in item if isinstance(item, list) else [item]:
                    if isinstance(part, str):
                        yield part


def date_span(value: Any, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The instants a date, dateTime or Period value stands for; None if it is none."""
    try:
        if isinstance(value, str):
            return parse_range(value, zone)
        if isinstance(value, dict):
            return period_range(value, zone)
    except ValueError:
        return None
    return None


# Person-level dates (a birth date, a date of death) are quasi-identifiers: with a sex and
# a district they single out most people, and a copy of the database would hold them in
# clear. The index keeps only the span of ``COARSE_YEARS`` calendar years, in the
# community's zone, that holds the date; a search narrows by that span in SQL and
# compares the exact date on the decrypted record (``exchange.store.search_sql``). Five
# years, the age band the pseudonymized profile releases: as coarse as anything that
# leaves, and a search still opens only the records of the one or two spans at its edges.
# Beside the span, the calendar year, month and day that hold the date are blind terms of
# the resident's (``calendar_terms``): the commonest search, a birth date ``eq`` a day, is
# then found exactly in SQL, deciding on no one else and opening no record.
PERSON_DATES = frozenset({"birthDate", "deceasedDateTime"})
# Every other date (when a reading was taken, a visit began, a claim was made) is a
# fingerprint too: times of day and intervals single a resident out of a pseudonymized
# feed (#15), and a copy of the database pairs them with the resident's row. The index
# keeps only the calendar month, in the community's zone, that holds it (a Period: the
# months from its start to its end), and the day as a blind term of the resident's (a
# search by a whole day is then exact in SQL); the exact instant is in the encrypted
# record, compared there for the searches and sorts whose month edges SQL cannot settle.
# The form the indexes are written in: 4, every date other than a person-level one as
# its calendar months with its day as a blind term, and every record padded to
# ``SECURITY_ROWS`` ``_security`` rows (3: an ICD-10 code's place in its hierarchy under
# its parameter's ``:below`` key; 2: terms keyed per resident and person-level dates as
# spans; 1, the first: terms keyed once for the community, every date exact). A store in
# another form is rebuilt before it is searched (``exchange.store.reindexing``).
INDEX_FORM = 4
COARSE_YEARS = 5
PERSON_DATE_PARAMS = frozenset((rtype, name) for rtype, params in PARAMS.items()
                               for name, param in params.items()
                               if param.kind == "date" and param.roots & PERSON_DATES)
COARSE_DATES = frozenset((rtype, name) for rtype, params in PARAMS.items()
                         for name, param in params.items() if param.kind == "date")


def is_coarse(rtype: str, param: str) -> bool:
    """Whether the index holds ``param`` of ``rtype`` only as a span (every date: a
    person-level one as its years, any other as its months)."""
    return (rtype, param) in COARSE_DATES


def is_person_date(rtype: str, param: str) -> bool:
    """Whether ``param`` of ``rtype`` is a person-level date, held as a span of years."""
    return (rtype, param) in PERSON_DATE_PARAMS


def month_span(low: datetime, high: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The span of whole calendar months of ``zone`` that holds [low, high); an open or
    far end stays as it is."""
    try:
        first = low.astimezone(zone)
        start = _instant(date(first.year, first.month, 1), zone) if low > FAR_PAST else low
    except OverflowError:
        start = low
    if high >= FAR_FUTURE:
        return start, high
    try:
        last = (high - timedelta(microseconds=1)).astimezone(zone)
        if (last.year, last.month) >= (9999, 12):
            return start, FAR_FUTURE
        following = date(last.year + last.month // 12, last.month % 12 + 1, 1)
        return start, max(_instant(following, zone), high)
    except OverflowError:
        return start, high


def coarse_span(low: datetime, high: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The span of whole ``COARSE_YEARS``-year blocks (1940-1944, 1945-1949, ...) of the
    calendar in ``zone`` that holds [low, high)."""
    first = low.astimezone(zone).year
    last = (high - timedelta(microseconds=1)).astimezone(zone).year
    return (_new_year(first - first % COARSE_YEARS, zone),
            _new_year(last - last % COARSE_YEARS + COARSE_YEARS, zone))


def exact_spans(resource: dict[str, Any], param: SearchParam,
                zone: tzinfo) -> list[tuple[datetime, datetime]]:
    """The exact instants of a date parameter's values in a (decrypted) resource: what
    the index would hold of them in clear."""
    spans = (date_span(value, zone) for value in param_values(resource, param))
    return [span for span in spans if span is not None]


def _new_year(year: int, zone: tzinfo) -> datetime:
    if year < 1:
        return FAR_PAST
    if year > FAR_FUTURE.year:
        return FAR_FUTURE
    try:
        return datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    except OverflowError:  # the first hours of year 1, east of Greenwich
        return FAR_PAST


def calendar_terms(low: datetime, high: datetime, zone: tzinfo) -> list[str]:
    """The calendar year, month and day of ``zone`` that hold all of [low, high), as
    terms (``y1942``, ``m1942-03``, ``d1942-03-08``; a year-only date has the first): a
    date ``eq`` a whole year, month or day is one they hold (``calendar_term``)."""
    return [term for term, _, end in _calendar(low.astimezone(zone), zone) if high <= end]


def day_term(low: datetime, high: datetime, zone: tzinfo) -> str | None:
    """The term of the calendar day of ``zone`` that holds all of [low, high), or None:
    of ``calendar_terms``, the one an event date is indexed with."""
    try:
        day = low.astimezone(zone).date()
        end = _instant(day + timedelta(days=1), zone)
    except OverflowError:
        return None
    return f"d{day.isoformat()}" if high <= end else None


def calendar_term(low: datetime, high: datetime, zone: tzinfo) -> str | None:
    """The term of the calendar year, month or day of ``zone`` that [low, high) is,
    exactly, or None: a searched value that ``calendar_terms`` can answer."""
    for term, start, end in _calendar(low.astimezone(zone), zone):
        if (start, end) == (low, high):
            return term
    return None


def _calendar(local: datetime, zone: tzinfo) -> Iterator[tuple[str, datetime, datetime]]:
    """The year, month and day that hold a local moment, with their bounds as instants
    (as ``fhir.dates`` reads a date without a zone)."""
    day = local.date()
    try:
        following = day + timedelta(days=1)
    except OverflowError:
        following = None
    yield (f"y{day:%Y}", _instant(date(day.year, 1, 1), zone),
           _instant(date(day.year + 1, 1, 1) if day.year < 9999 else None, zone))
    month_end = date(day.year + day.month // 12, day.month % 12 + 1, 1) \
        if (day.year, day.month) < (9999, 12) else None
    yield (f"m{day:%Y-%m}", _instant(date(day.year, day.month, 1), zone),
           _instant(month_end, zone))
    yield f"d{day.isoformat()}", _instant(day, zone), _instant(following, zone)


def _instant(day: date | None, zone: tzinfo) -> datetime:
    if day is None:
        return FAR_FUTURE
    try:
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return FAR_PAST
