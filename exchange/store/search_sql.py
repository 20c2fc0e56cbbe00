"""Search in SQL: a parsed ``SearchQuery`` and the decision's filters become one statement.

It knows nothing of who asks. The gate decides first and passes the residents a caller may
see (``allowed``), the labels withheld and the categories each resident opened, so that
filtering happens here, before counting and paging.

The index holds nothing a copy of the database could read (``exchange.store.indexing``):
a term of a resident's record is keyed by that resident, so a search asks for the term
under the key of every resident it may reach (the allowed ones; for the candidate step,
before any decision, every resident with records of the type); and a person-level date
(a birth date) is indexed only as its five-year span, so a search by it or sorted by it
narrows by the span in SQL and compares the exact date on the decrypted records of the
spans at its edges, the allowed residents' only.
"""

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, and_, bindparam, func, literal, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from exchange.errors import DependencyUnavailable, InvalidSearch
from exchange.fhir.data_classes import ClassRule
from exchange.fhir.dates import parse_range, period_range
from exchange.fhir.search import (
    COMPARTMENT_CLAUSE,
    Chain,
    Clause,
    CompositeValue,
    DateValue,
    Include,
    MissingValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
)
from exchange.fhir.search_params import PARAMS, VALUE_KINDS, SearchParam
from exchange.fhir.subsumption import subsumed
from exchange.fhir.values import VALUE_LIMIT, NumberValue
from exchange.privacy.blind_index import BlindIndex, normalize_text
from exchange.store.coarse_dates import (
    exactly_sorted,
    page_window,
    span_could_match,
    span_must_match,
)
from exchange.store.dependents import unlabelled_among
from exchange.store.indexing import (
    MAX_PREFIX,
    SECURITY,
    calendar_term,
    exact_spans,
    is_coarse,
    is_person_date,
    modifier_key,
    param_values,
    token_pairs,
    uri_prefixes,
    values_at,
)
from exchange.store.resources import (
    RESOURCES,
    Allowed,
    D,
    F,
    R,
    ResourceVersions,
    StoredResource,
    T,
    allowed_filter,
    held_by,
)
from exchange.store.units import reading

CATEGORY = "category"  # the search parameter data classes narrower than a type rely on


@dataclass
class _Reach:
    """Whose records one statement may match: the residents it is among (``allowed``;
    None: every one), whether a coarse date is compared exactly (a search) or only by its
    span (the candidate step, a superset: no record is opened before a decision), and the
    residents under whose keys each type's terms are asked, once per statement."""

    allowed: Collection[str] | None
    exact: bool
    rtype: str = ""
    compartment: frozenset[str] | None = None  # the query's own ``Patient/{id}/…``
    holder: str | None = None  # and the records of no resident held for this organization
    # The conditions of the statement's other clauses, which a date's exact step keeps to.
    narrow: list[ColumnElement[bool]] = field(default_factory=list)
    owners: dict[str, list[str | None]] = field(default_factory=dict)


class ResourceSearch:
    def __init__(self, engine: Engine, blind: BlindIndex, versions: ResourceVersions) -> None:
        self._engine = engine
        self._blind = blind
        self._versions = versions

    def candidate_residents(self, query: SearchQuery) -> set[str | None]:
        """Residents with at least one match: whom the gate must decide about. By a
        person-level date, those whose span of years could match: the exact date is in
        their records, which are opened only once the decision allows it."""
        self._versions.index.require()
        stmt = select(R.patient_id).where(*self._filters(query, _Reach(None, False))) \
            .distinct()
        try:
            with reading(self._engine) as conn:
                return {row[0] for row in conn.execute(stmt)}
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None

    def residents_with(self, resource_type: str) -> set[str | None]:
        stmt = select(R.patient_id).where(R.resource_type == resource_type).distinct()
        with reading(self._engine) as conn:
            return {row[0] for row in conn.execute(stmt)}

    def search(self, query: SearchQuery, allowed: Allowed,
               withhold: Sequence[dict[str, Any]] = (),
               classes: Mapping[str, ClassRule] | None = None,
               neutral_order: bool = False,
               order: Callable[[str], str] | None = None,
               holder: str | None = None) -> tuple[int, list[StoredResource]]:
        """Matches of ``query`` among the allowed residents' records (and the records of
        no resident held for the organization ``holder``), without the labels
        withheld and, for residents whose consents open only some categories of the type,
        within those (``classes``): the same rules the gate applies to each resource.
        ``neutral_order`` breaks ties by id alone, not by the real time of the last change
        (for de-identified disclosures, where that time is withheld). ``order`` (a
        resource id to the key it is ordered by, a pseudonym) replaces the order: the
        ids of every match are read, ordered by it, and only the page is fetched."""
        self._versions.index.require()
        rtype = query.resource_type
        reach = _Reach(allowed, True, holder=holder)
        if classes and allowed is not None:
            among = self._class_filter(rtype, allowed, classes, reach)
            where = [*self._filters(query, reach),
                     or_(among, held_by(holder)) if holder is not None else among]
        else:
            where = [*self._filters(query, reach), *allowed_filter(allowed, holder)]
        if withhold:
            labels = [f"{label.get('system')}|{label.get('code')}" for label in withhold]
            unlabelled = R.resource_id.not_in(select(T.resource_id).where(
                T.resource_type == rtype, T.param == SECURITY,
                _one_of(T.term, self._terms(rtype, SECURITY, labels, reach))))
            # labels protect residents: a record held for the caller names none
            where.append(or_(unlabelled, held_by(holder)) if holder is not None
                         else unlabelled)
        by_value = [c for c in query.clauses if c.param is not None
                    and c.param.kind in VALUE_KINDS and c.chain is None]
        if by_value:
            total, kept = self._by_value(replace(query, offset=0, count=VALUE_LIMIT)
                                         if order else query, where, by_value, neutral_order)
            if order is None or query.summary_count or query.count == 0:
                return total, kept
            kept.sort(key=lambda row: order(row.resource_id), reverse=_descending(query))
            return total, kept[query.offset:query.offset + query.count]
        if order is not None:
            return self._page_by(query, where, order)
        count_stmt = select(func.count()).select_from(RESOURCES).where(*where)
        total = int(self._versions.first(count_stmt)[0])
        if query.summary_count or query.count == 0:
            return total, []
        if _coarse_sort(query):
            return total, self._exact_page(query, where, neutral_order)
        stmt = self._ordered(query, where, neutral_order)
        return total, self._versions.fetch(stmt.offset(query.offset).limit(query.count))

    def _page_by(self, query: SearchQuery, where: list[ColumnElement[bool]],
                 order: Callable[[str], str]) -> tuple[int, list[StoredResource]]:
        try:
            with reading(self._engine) as conn:
                ids = [str(r[0]) for r in conn.execute(select(R.resource_id).where(*where))]
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        if query.summary_count or query.count == 0:
            return len(ids), []
        ids.sort(key=order, reverse=_descending(query))
        page = ids[query.offset:query.offset + query.count]
        if not page:
            return len(ids), []
        rows = {row.resource_id: row for row in self._versions.fetch(
            select(RESOURCES).where(*where, R.resource_id.in_(page)))}
        return len(ids), [rows[i] for i in page if i in rows]

    def _by_value(self, query: SearchQuery, where: list[ColumnElement[bool]],
                  clauses: list[Clause], neutral_order: bool) -> tuple[int, list[StoredResource]]:
        """Narrowed in SQL by everything else, then compared on the decrypted values
        (fhir/values.py says why no value is indexed); page and total after that."""
        rows = self._versions.fetch(self._ordered(query, where, neutral_order)
                                    .limit(VALUE_LIMIT + 1))
        if len(rows) > VALUE_LIMIT:
            raise InvalidSearch(f"A search by value compares at most {VALUE_LIMIT} "
                                "resources; narrow it by code, patient or date.")
        kept = [row for row in rows
                if all(_admits(clause, orjson.loads(row.body)) for clause in clauses)]
        if _coarse_sort(query):
            kept = exactly_sorted(kept, query, self._versions.zone, neutral_order)
        if query.summary_count or query.count == 0:
            return len(kept), []
        return len(kept), kept[query.offset:query.offset + query.count]

    def _ordered(self, query: SearchQuery, where: list[ColumnElement[bool]],
                 neutral_order: bool) -> Any:
        """The matches in the order asked: by a coarse date, by its span of years, which
        ``_exact_page`` refines."""
        stmt = select(RESOURCES).where(*where)
        order: list[Any] = []
        for key, descending in query.sort:
            column = _sort_column(query.resource_type, key)
            order.append(column.desc() if descending else column.asc())
        order.extend([R.resource_id] if neutral_order else [R.last_updated, R.resource_id])
        return stmt.order_by(*order)

    def _exact_page(self, query: SearchQuery, where: list[ColumnElement[bool]],
                    neutral_order: bool) -> list[StoredResource]:
        """A page sorted by a coarse date: the spans order the matches, and the exact order
        only reorders matches within one span (a date's span follows the date). So the
        matches' ids and spans are read in one statement and ordered here, the page is
        cut from the spans it falls in, and only those spans' records are opened, each
        span sorted by their exact dates: the cost is the size of those spans, not of the
        whole result."""
        rtype = query.resource_type
        last = max(i for i, (key, _) in enumerate(query.sort) if is_coarse(rtype, key))
        prefix = query.sort[:last + 1]
        keyed = select(R.resource_id, *(_sort_column(rtype, key).label(f"k{i}")
                                        for i, (key, _) in enumerate(prefix))).where(*where)
        try:
            with reading(self._engine) as conn:
                matches = [tuple(row) for row in conn.execute(keyed)]
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        for i, (_, descending) in reversed(list(enumerate(prefix, start=1))):
            # as SQL orders: a match without the date first ascending, last descending
            matches.sort(key=partial(_span_key, column=i), reverse=descending)
        groups: list[list[str]] = []  # the ids of each span, in order
        previous: tuple[Any, ...] | None = None
        for match in matches:
            if groups and match[1:] == previous:
                groups[-1].append(str(match[0]))
            else:
                groups.append([str(match[0])])
            previous = match[1:]
        start, stop = query.offset, query.offset + query.count
        first, window = page_window([len(g) for g in groups], start, stop)
        if not window:
            return []
        seen, index = 0, 0  # the group the window's first row begins
        while seen < first:
            seen += len(groups[index])
            index += 1
        chosen = groups[index:index + len(window)]
        rows = {row.resource_id: row for row in self._versions.fetch(select(RESOURCES).where(
            R.resource_type == rtype, R.is_current,
            R.resource_id.in_([i for g in chosen for i in g])))}
        ordered: list[StoredResource] = []
        for group in chosen:
            ordered.extend(exactly_sorted([rows[i] for i in group if i in rows], query,
                                          self._versions.zone, neutral_order))
        return ordered[start - first:stop - first]

    def included(self, results: Sequence[StoredResource], includes: Sequence[Include],
                 revincludes: Sequence[Include], limit: int = 1000) -> list[StoredResource]:
        """Resources named by ``_include`` / ``_revinclude``; the gate decides on each."""
        if not results:
            return []
        found: dict[tuple[str, str], StoredResource] = {}
        ids = [r.resource_id for r in results]
        refs = [r.reference for r in results]
        with reading(self._engine) as conn:
            targets: set[str] = set()
            for inc in includes:
                stmt = select(F.target).where(
                    F.resource_type == inc.source_type, F.param.in_(inc.param.index_keys),
                    F.resource_id.in_(ids))
                for (target,) in conn.execute(stmt):
                    if inc.target_type is None or target.startswith(inc.target_type + "/"):
                        targets.add(target)
            rev: list[tuple[str, str]] = []
            for inc in revincludes:
                stmt = select(F.resource_type, F.resource_id).where(
                    F.resource_type == inc.source_type, F.param.in_(inc.param.index_keys),
                    F.target.in_(refs)).limit(limit)
                rev.extend((t, i) for t, i in conn.execute(stmt))
        wanted = {tuple(t.split("/", 1)) for t in targets} | set(rev)
        wanted -= {(r.resource_type, r.resource_id) for r in results}
        for rtype, rid in sorted(wanted)[:limit]:
            row = self._versions.read(rtype, rid)
            if row is not None and not row.deleted:
                found[(rtype, rid)] = row
        return list(found.values())

    # -- the query's conditions -------------------------------------------------------------

    def _class_filter(self, rtype: str, allowed: Collection[str],
                      classes: Mapping[str, ClassRule], reach: _Reach) -> ColumnElement[bool]:
        def having(categories: frozenset[tuple[str, str]],
                   group: list[str]) -> ColumnElement[bool]:
            terms = [f"{system}|{code}" for system, code in sorted(categories)]
            among = _Reach(group, reach.exact)
            return R.resource_id.in_(select(T.resource_id).where(
                T.resource_type == rtype, T.param == CATEGORY,
                _one_of(T.term, self._terms(rtype, CATEGORY, terms, among))))

        def admitted(rule: ClassRule, group: list[str]) -> ColumnElement[bool]:
            grants = [and_(literal(True),
                           *([having(g.only, group)] if g.only is not None else []),
                           *([~having(g.excepted, group)] if g.excepted else []))
                      for g in rule.grants]
            return and_(or_(literal(False), *grants),
                        *([~having(rule.excepted, group)] if rule.excepted else []))

        groups: dict[ClassRule, list[str]] = {}
        for resident in allowed:
            if resident in classes:
                groups.setdefault(classes[resident], []).append(resident)
        plain = sorted(r for r in allowed if r not in classes)
        return or_(R.patient_id.in_(plain), *(and_(R.patient_id.in_(sorted(group)),
                                                 admitted(rule, sorted(group)))
                                            for rule, group in groups.items()))

    def _filters(self, query: SearchQuery, reach: _Reach) -> list[ColumnElement[bool]]:
        rtype = query.resource_type
        reach.rtype = rtype
        for clause in query.clauses:
            if clause.name == COMPARTMENT_CLAUSE:  # its records are that resident's
                inside = frozenset(str(v) for v in clause.values)
                reach.compartment = inside if reach.compartment is None \
                    else reach.compartment & inside
        where: list[ColumnElement[bool]] = [R.resource_type == rtype, R.is_current, ~R.deleted]
        # Dates last: a date's edge spans open only the records every other clause keeps.
        for clause in sorted(query.clauses, key=lambda c: c.param is not None
                             and c.param.kind == "date" and c.chain is None):
            reach.narrow = list(where)
            where.append(self._clause(rtype, clause, reach))
        reach.narrow = []
        return where

    def _owners(self, rtype: str, reach: _Reach) -> list[str | None]:
        """The residents whose records of ``rtype`` a statement may reach, under whose keys
        its terms are asked (None: the directory's, keyed for the community)."""
        if rtype not in reach.owners:
            owners: set[str | None] = set(reach.allowed) if reach.allowed is not None \
                else self.residents_with(rtype)
            if reach.holder is not None:  # held records are keyed as the directory's
                owners.add(None)
            if reach.compartment is not None and rtype == reach.rtype:
                owners &= set(reach.compartment)
            reach.owners[rtype] = list(owners)
        return reach.owners[rtype]

    def _terms(self, rtype: str, key: str, terms: Sequence[str],
               reach: _Reach) -> list[str]:
        """``terms`` under ``key`` as the index holds them in each record within reach."""
        return [self._blind.owned(owner, key, term)
                for owner in self._owners(rtype, reach) for term in terms]

    def _clause(self, rtype: str, clause: Clause, reach: _Reach) -> ColumnElement[bool]:
        if clause.name == "_id":
            return R.resource_id.in_([str(v) for v in clause.values])
        if clause.name == COMPARTMENT_CLAUSE:
            return R.patient_id.in_([str(v) for v in clause.values])
        if clause.name == "_lastUpdated":
            return or_(*(_instant_condition(v, R.last_updated)
                         for v in clause.values if isinstance(v, DateValue)))
        assert clause.param is not None
        if clause.param.kind in VALUE_KINDS and clause.chain is None:
            return literal(True)  # compared on the decrypted resource (search, _by_value)
        if clause.chain is not None:
            return R.resource_id.in_(self._chain_ids(rtype, clause.param, clause.chain,
                                                     clause.values, reach))
        param, modifier = clause.param, clause.modifier
        if modifier == "missing":
            present = ~self._unlabelled(rtype, reach) if param.name == SECURITY else \
                R.resource_id.in_(self._present_ids(rtype, param))
            missing = any(isinstance(v, MissingValue) and v.missing for v in clause.values)
            return ~present if missing else present
        if modifier == "not":  # no value among these; no value at all matches too
            return ~R.resource_id.in_(self._matching_ids(rtype, param, clause.values, reach))
        if modifier in ("contains", "text"):
            # every word of one value: within a stored word (contains), or a word (text)
            keys = _keys(param, modifier)
            mark = "~" if modifier == "contains" else "^"
            alternatives = []
            for v in clause.values:
                words = normalize_text(v.text).split() if isinstance(v, StringValue) else []
                alternatives.append(and_(*(R.resource_id.in_(self._term_ids(
                    rtype, keys, [mark + w[:MAX_PREFIX]], reach)) for w in words))
                    if words else literal(False))
            return or_(literal(False), *alternatives)
        if modifier in ("of-type", "identifier"):
            terms = [str(v) for v in clause.values] if modifier == "of-type" else \
                _search_terms(param, clause.values)
            return R.resource_id.in_(self._term_ids(rtype, _keys(param, modifier), terms,
                                                    reach))
        if modifier in ("below", "above") and param.kind == "token":
            return self._subsumed(rtype, param, modifier, clause.values, reach)
        if modifier in ("below", "above"):
            terms = [f"b^{v.code}" for v in clause.values if isinstance(v, TokenValue)] \
                if modifier == "below" else \
                [f"*|{p}" for v in clause.values if isinstance(v, TokenValue) and v.code
                 for p in uri_prefixes(v.code)]
            return R.resource_id.in_(self._term_ids(rtype, param.index_keys, terms, reach))
        return R.resource_id.in_(self._matching_ids(rtype, param, clause.values, reach))

    def _subsumed(self, rtype: str, param: SearchParam, modifier: str,
                  values: Sequence[Any], reach: _Reach) -> ColumnElement[bool]:
        """``:below``/``:above`` on a token (``exchange.fhir.subsumption``): an HL7 code
        system's code expanded into exact terms under the parameter's own keys, an
        ICD-10 code by where the index placed each code, under its ``:below`` key. Terms
        like any other, under the keys of the residents within reach: a modifier asks
        nothing of a record that the same search without it could not."""
        found = [subsumed(modifier, v.system, v.code) for v in values
                 if isinstance(v, TokenValue)]
        own = [t for s in found for t in s.own]
        placed = [t for s in found for t in s.placed]
        return or_(literal(False),
                   *([R.resource_id.in_(self._term_ids(rtype, param.index_keys, own, reach))]
                     if own else []),
                   *([R.resource_id.in_(self._term_ids(rtype, _keys(param, "below"), placed,
                                                       reach))] if placed else []))

    def _term_ids(self, rtype: str, keys: Sequence[str], terms: Sequence[str],
                  reach: _Reach) -> Any:
        """Resources with any of ``terms`` under any of ``keys`` (a term is blinded with
        its key and its record's resident, so each key is asked with its own, under
        every resident's key within reach)."""
        return select(T.resource_id).where(T.resource_type == rtype, or_(*(
            and_(T.param == key, _one_of(T.term, self._terms(rtype, key, terms, reach)))
            for key in keys)))

    def _unlabelled(self, rtype: str, reach: _Reach) -> ColumnElement[bool]:
        """The records within reach that carry no security label. Every record holds as
        many ``_security`` rows as any other (``indexing.SECURITY_ROWS``), so a row tells
        nothing: a record with no label is one that holds its own marker
        (``indexing.unlabelled_marker``), which is keyed by the record, so each record of
        the type within reach is asked by its own. The one condition whose cost grows
        with the records within reach, not with the terms asked."""
        whose: ColumnElement[bool] = literal(True)  # every resident's, and the directory's
        if reach.allowed is not None or (reach.compartment is not None
                                         and rtype == reach.rtype):
            owners = self._owners(rtype, reach)
            whose = or_(_one_of(R.patient_id, sorted(o for o in owners if o is not None)),
                        *([R.patient_id.is_(None)] if None in owners else []))
        # Never another organization's held records: their number would show in the time
        # taken (the caller's own are decided whether or not any match).
        whose = and_(whose, R.holder.is_(None) if reach.holder is None
                     else or_(R.holder.is_(None), R.holder == reach.holder))
        return _one_of(R.resource_id, unlabelled_among(self._engine, self._blind, rtype,
                                                       whose))

    def _present_ids(self, rtype: str, param: SearchParam) -> Any:
        """Resources with any indexed value for ``param``."""
        table = {"date": D, "reference": F}.get(param.kind, T)
        present = select(table.resource_id).where(table.resource_type == rtype,
                                                  table.param.in_(param.index_keys))
        if param.kind != "reference":
            return present
        # a reference by identifier alone is a value too
        return present.union(select(T.resource_id).where(
            T.resource_type == rtype, T.param.in_(_keys(param, "identifier"))))

    def _matching_ids(self, rtype: str, param: SearchParam, values: Sequence[Any],
                      reach: _Reach) -> Any:
        keys = param.index_keys
        if param.kind in ("token", "uri", "string"):
            return self._term_ids(rtype, keys, _search_terms(param, values), reach)
        if param.kind == "date":  # every date is indexed as its span (indexing.py)
            return self._coarse_date_ids(rtype, param, values, reach)
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param.in_(keys),
            F.target.in_([v.target for v in values if isinstance(v, ReferenceValue)]))

    def _coarse_date_ids(self, rtype: str, param: SearchParam, values: Sequence[Any],
                         reach: _Reach) -> Any:
        """Resources whose date matches. ``eq`` a whole day (of a person-level date, also
        a whole month or year): those holding its blind term. Else those whose span (of
        years, or of months) matches whatever the date within it (in SQL alone), and of
        those whose span could match or not, the ones whose decrypted record matches,
        among the allowed residents'. The candidate step, which opens nothing, keeps every
        span that could match."""
        dates = [v for v in values if isinstance(v, DateValue)]
        zone = self._versions.zone
        person = is_person_date(rtype, param.name)
        days = [term if v.prefix == "eq" and (term := calendar_term(v.low, v.high, zone))
                and (person or term.startswith("d")) else None for v in dates]
        if days and all(days):
            # a whole day, month or year: by the resident's blind term of it, exactly
            return self._term_ids(rtype, param.index_keys, [d for d in days if d], reach)
        rows = [D.resource_type == rtype, D.param.in_(param.index_keys)]
        could = or_(literal(False), *(span_could_match(v, D.low, D.high) for v in dates))
        if not reach.exact:
            return select(D.resource_id).where(*rows, could)
        must = or_(literal(False), *(span_must_match(v, D.low, D.high) for v in dates))
        undecided = select(D.resource_id).where(*rows, could, ~must)
        stmt = select(RESOURCES).where(R.resource_type == rtype, R.is_current, ~R.deleted,
                                       R.resource_id.in_(undecided),
                                       *(reach.narrow if rtype == reach.rtype else ()),
                                       *allowed_filter(reach.allowed, reach.holder))
        exact = [row.resource_id for row in self._versions.fetch(stmt)
                 if any(_date_admits(v, *span) for span in exact_spans(
                     orjson.loads(row.body), param, zone) for v in dates)]
        return select(D.resource_id).where(*rows, or_(must, _one_of(D.resource_id, exact)))

    def _chain_ids(self, rtype: str, ref: SearchParam, chain: Chain,
                   values: Sequence[Any], reach: _Reach) -> Any:
        target_ids = self._matching_ids(chain.target_type, chain.param, values, reach)
        targets = select(literal(chain.target_type + "/") + R.resource_id).where(
            R.resource_type == chain.target_type, R.is_current, ~R.deleted,
            R.resource_id.in_(target_ids))
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param.in_(ref.index_keys), F.target.in_(targets))


def _keys(param: SearchParam, modifier: str) -> tuple[str, ...]:
    return tuple(modifier_key(k, modifier) for k in param.index_keys)


def _one_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """``column IN (values)``, the values written into the statement: a term asked under
    every resident's key makes a list longer than a driver's bound parameters allow
    (they are hex digests and ids, which the dialect quotes)."""
    return column.in_(bindparam(None, list(values), String(), expanding=True,
                                literal_execute=True))


def _sort_column(rtype: str, key: str) -> Any:
    if key == "_id":
        return R.resource_id
    if key == "_lastUpdated":
        return R.last_updated
    return (select(func.min(D.low)).where(
        D.resource_type == rtype, D.param.in_(PARAMS[rtype][key].index_keys),
        D.resource_id == R.resource_id).scalar_subquery())


def _span_key(match: tuple[Any, ...], column: int) -> tuple[bool, Any]:
    """A match's span in ``column`` as SQL orders it: none before every span."""
    value = match[column]
    return (False, 0) if value is None else (True, value)


def _coarse_sort(query: SearchQuery) -> bool:
    return any(is_coarse(query.resource_type, key) for key, _ in query.sort)


def _admits(clause: Clause, resource: dict[str, Any]) -> bool:
    """Whether a decrypted resource matches a clause by value: a number or quantity, or a
    composite, whose components must all match within one item (the Observation, or one
    of its components)."""
    param = clause.param
    assert param is not None
    if param.kind != "composite":
        return any(isinstance(v, NumberValue) and v.admits(found)
                   for found in param_values(resource, param) for v in clause.values)
    nodes = [node for item in param.items
             for node in ([resource] if not item else values_at(resource, item))]
    return any(isinstance(v, CompositeValue) and all(
        any(_part_admits(part, found) for path in paths for found in values_at(node, path))
        for part, (_, paths) in zip(v.parts, param.components, strict=True))
        for v in clause.values for node in nodes)


def _part_admits(part: Any, found: Any) -> bool:
    if isinstance(part, NumberValue):
        return part.admits(found)
    if isinstance(part, TokenValue):
        return any((part.system is None or part.system == (system or ""))
                   and (part.code is None or part.code == code)
                   for system, code in token_pairs(found))
    if isinstance(part, StringValue):
        return isinstance(found, str) and normalize_text(found).startswith(
            normalize_text(part.text))
    if isinstance(part, DateValue):
        try:
            span = parse_range(found, part.zone) if isinstance(found, str) else \
                period_range(found, part.zone) if isinstance(found, dict) else None
        except ValueError:
            return False
        return span is not None and _date_admits(part, *span)
    return False


def _search_terms(param: SearchParam, values: Sequence[Any]) -> list[str]:
    terms: list[str] = []
    for v in values:
        if isinstance(v, TokenValue):
            if v.system is None:
                terms.append(f"*|{v.code}")
            elif v.code is None:
                terms.append(f"{v.system}|*")
            else:
                terms.append(f"{v.system}|{v.code}")
        elif isinstance(v, StringValue):
            text = normalize_text(v.text)
            terms.append("=" + text if v.exact else "^" + text[:MAX_PREFIX])
    return terms


def _date_condition(value: DateValue, low: Any, high: Any, both: Any = and_,
                    either: Any = or_) -> Any:
    """FHIR date comparison of the stored range [low, high) against the searched one: on
    columns, an SQL condition; with ``both``/``either`` of plain booleans, on values (a
    composite's date, compared on the decrypted record)."""
    if value.prefix == "eq":
        return both(low >= value.low, high <= value.high)
    if value.prefix == "ne":
        return either(low < value.low, high > value.high)
    if value.prefix == "gt":
        return high > value.high
    if value.prefix == "ge":
        return high > value.low
    if value.prefix == "lt":
        return low < value.low
    return low < value.high  # le


def _date_admits(value: DateValue, low: Any, high: Any) -> bool:
    return bool(_date_condition(value, low, high, lambda a, b: a and b, lambda a, b: a or b))


def _instant_condition(value: DateValue, column: Any) -> ColumnElement[bool]:
    if value.prefix == "eq":
        return and_(column >= value.low, column < value.high)
    if value.prefix == "ne":
        return or_(column < value.low, column >= value.high)
    if value.prefix == "gt":
        return column >= value.high
    if value.prefix == "ge":
        return column >= value.low
    if value.prefix == "lt":
        return column < value.low
    return column < value.high  # le


def _descending(query: SearchQuery) -> bool:
    """Under an order by pseudonym the only sort a caller may ask is by id: ``-_id``."""
    return any(key == "_id" and descending for key, descending in query.sort)
