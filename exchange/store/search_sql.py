"""Search in SQL: a parsed ``SearchQuery`` and the decision's filters become one statement.

It knows nothing of who asks. The gate decides first and passes the residents a caller may
see (``allowed``), the labels withheld and the categories each resident opened, so that
filtering happens here, before counting and paging.
"""

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, literal, or_, select
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
from exchange.fhir.values import VALUE_LIMIT, NumberValue
from exchange.privacy.blind_index import BlindIndex, normalize_text
from exchange.store.indexing import (
    MAX_PREFIX,
    SECURITY,
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
)
from exchange.store.units import reading

CATEGORY = "category"  # the search parameter data classes narrower than a type rely on


class ResourceSearch:
    def __init__(self, engine: Engine, blind: BlindIndex, versions: ResourceVersions) -> None:
        self._engine = engine
        self._blind = blind
        self._versions = versions

    def candidate_residents(self, query: SearchQuery) -> set[str | None]:
        """Residents with at least one match: whom the gate must decide about."""
        stmt = select(R.patient_id).where(*self._filters(query)).distinct()
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
               neutral_order: bool = False) -> tuple[int, list[StoredResource]]:
        """Matches of ``query`` among the allowed residents' records, without the labels
        withheld and, for residents whose consents open only some categories of the type,
        within those (``classes``): the same rules the gate applies to each resource.
        ``neutral_order`` breaks ties by id alone, not by the real time of the last change
        (for de-identified disclosures, where that time is withheld)."""
        if classes and allowed is not None:
            where = [*self._filters(query), self._class_filter(query.resource_type,
                                                               allowed, classes)]
        else:
            where = [*self._filters(query), *allowed_filter(allowed)]
        if withhold:
            terms = [self._blind.term(SECURITY, f"{label.get('system')}|{label.get('code')}")
                     for label in withhold]
            where.append(R.resource_id.not_in(select(T.resource_id).where(
                T.resource_type == query.resource_type, T.param == SECURITY,
                T.term.in_(terms))))
        by_value = [c for c in query.clauses if c.param is not None
                    and c.param.kind in VALUE_KINDS and c.chain is None]
        if by_value:
            return self._by_value(query, where, by_value, neutral_order)
        count_stmt = select(func.count()).select_from(RESOURCES).where(*where)
        total = int(self._versions.first(count_stmt)[0])
        if query.summary_count or query.count == 0:
            return total, []
        stmt = self._ordered(query, where, neutral_order)
        return total, self._versions.fetch(stmt.offset(query.offset).limit(query.count))

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
        if query.summary_count or query.count == 0:
            return len(kept), []
        return len(kept), kept[query.offset:query.offset + query.count]

    def _ordered(self, query: SearchQuery, where: list[ColumnElement[bool]],
                 neutral_order: bool) -> Any:
        stmt = select(RESOURCES).where(*where)
        order: list[Any] = []
        for key, descending in query.sort:
            if key == "_id":
                column: Any = R.resource_id
            elif key == "_lastUpdated":
                column = R.last_updated
            else:
                keys = PARAMS[query.resource_type][key].index_keys
                column = (select(func.min(D.low)).where(
                    D.resource_type == query.resource_type, D.param.in_(keys),
                    D.resource_id == R.resource_id).scalar_subquery())
            order.append(column.desc() if descending else column.asc())
        order.extend([R.resource_id] if neutral_order else [R.last_updated, R.resource_id])
        return stmt.order_by(*order)

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
                      classes: Mapping[str, ClassRule]) -> ColumnElement[bool]:
        def having(categories: frozenset[tuple[str, str]]) -> ColumnElement[bool]:
            terms = [self._blind.term(CATEGORY, f"{system}|{code}")
                     for system, code in sorted(categories)]
            return R.resource_id.in_(select(T.resource_id).where(
                T.resource_type == rtype, T.param == CATEGORY, T.term.in_(terms)))

        def admitted(rule: ClassRule) -> ColumnElement[bool]:
            grants = [and_(literal(True), *([having(g.only)] if g.only is not None else []),
                           *([~having(g.excepted)] if g.excepted else []))
                      for g in rule.grants]
            return and_(or_(literal(False), *grants),
                        *([~having(rule.excepted)] if rule.excepted else []))

        groups: dict[ClassRule, list[str]] = {}
        for resident in allowed:
            if resident in classes:
                groups.setdefault(classes[resident], []).append(resident)
        plain = sorted(r for r in allowed if r not in classes)
        return or_(R.patient_id.in_(plain), *(and_(R.patient_id.in_(sorted(group)),
                                                 admitted(rule))
                                            for rule, group in groups.items()))

    def _filters(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        rtype = query.resource_type
        where: list[ColumnElement[bool]] = [R.resource_type == rtype, R.is_current, ~R.deleted]
        for clause in query.clauses:
            where.append(self._clause(rtype, clause))
        return where

    def _clause(self, rtype: str, clause: Clause) -> ColumnElement[bool]:
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
                                                     clause.values))
        param, modifier = clause.param, clause.modifier
        if modifier == "missing":
            present = R.resource_id.in_(self._present_ids(rtype, param))
            missing = any(isinstance(v, MissingValue) and v.missing for v in clause.values)
            return ~present if missing else present
        if modifier == "not":  # no value among these; no value at all matches too
            return ~R.resource_id.in_(self._matching_ids(rtype, param, clause.values))
        if modifier in ("contains", "text"):
            # every word of one value: within a stored word (contains), or a word (text)
            keys = _keys(param, modifier)
            mark = "~" if modifier == "contains" else "^"
            alternatives = []
            for v in clause.values:
                words = normalize_text(v.text).split() if isinstance(v, StringValue) else []
                alternatives.append(and_(*(R.resource_id.in_(self._term_ids(
                    rtype, keys, [mark + w[:MAX_PREFIX]])) for w in words))
                    if words else literal(False))
            return or_(literal(False), *alternatives)
        if modifier in ("of-type", "identifier"):
            terms = [str(v) for v in clause.values] if modifier == "of-type" else \
                _search_terms(param, clause.values)
            return R.resource_id.in_(self._term_ids(rtype, _keys(param, modifier), terms))
        if modifier in ("below", "above"):
            terms = [f"b^{v.code}" for v in clause.values if isinstance(v, TokenValue)] \
                if modifier == "below" else \
                [f"*|{p}" for v in clause.values if isinstance(v, TokenValue) and v.code
                 for p in uri_prefixes(v.code)]
            return R.resource_id.in_(self._term_ids(rtype, param.index_keys, terms))
        return R.resource_id.in_(self._matching_ids(rtype, param, clause.values))

    def _term_ids(self, rtype: str, keys: Sequence[str], terms: Sequence[str]) -> Any:
        """Resources with any of ``terms`` under any of ``keys`` (a term is blinded with
        its key, so each key is asked with its own)."""
        return select(T.resource_id).where(T.resource_type == rtype, or_(*(
            and_(T.param == key, T.term.in_([self._blind.term(key, t) for t in terms]))
            for key in keys)))

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

    def _matching_ids(self, rtype: str, param: SearchParam, values: Sequence[Any]) -> Any:
        keys = param.index_keys
        if param.kind in ("token", "uri", "string"):
            return self._term_ids(rtype, keys, _search_terms(param, values))
        if param.kind == "date":
            return select(D.resource_id).where(
                D.resource_type == rtype, D.param.in_(keys),
                or_(*(_date_condition(v, D.low, D.high) for v in values)))
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param.in_(keys),
            F.target.in_([v.target for v in values if isinstance(v, ReferenceValue)]))

    def _chain_ids(self, rtype: str, ref: SearchParam, chain: Chain,
                   values: Sequence[Any]) -> Any:
        target_ids = self._matching_ids(chain.target_type, chain.param, values)
        targets = select(literal(chain.target_type + "/") + R.resource_id).where(
            R.resource_type == chain.target_type, R.is_current, ~R.deleted,
            R.resource_id.in_(target_ids))
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param.in_(ref.index_keys), F.target.in_(targets))


def _keys(param: SearchParam, modifier: str) -> tuple[str, ...]:
    return tuple(modifier_key(k, modifier) for k in param.index_keys)


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
