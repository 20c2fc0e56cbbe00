"""The resource repository: versions, history, indexes and search, over encrypted rows.

It knows nothing of who asks. The gate decides first and passes the residents a caller may
see (``allowed``) so that filtering happens in SQL, before counting and paging.
"""

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session

from exchange.errors import Conflict, DependencyUnavailable
from exchange.fhir.data_classes import ClassRule
from exchange.fhir.dates import to_instant
from exchange.fhir.search import (
    Chain,
    Clause,
    DateValue,
    Include,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
)
from exchange.fhir.search_params import SearchParam
from exchange.ports import Clock
from exchange.privacy.blind_index import BlindIndex, normalize_text
from exchange.privacy.envelope import Vault
from exchange.store.indexing import MAX_PREFIX, SECURITY, compartment_of, index_entries
from exchange.store.tables import DateIndex, ReferenceIndex, ResourceRow, TermIndex

DIRECTORY_OWNER = "_directory"
RESOURCES = ResourceRow.__table__  # type: ignore[attr-defined]
R = RESOURCES.c
T = TermIndex.__table__.c  # type: ignore[attr-defined]
INDEX_TABLES = (TermIndex.__table__, DateIndex.__table__,  # type: ignore[attr-defined]
                ReferenceIndex.__table__)  # type: ignore[attr-defined]
CATEGORY = "category"  # the search parameter data classes narrower than a type rely on
D = DateIndex.__table__.c  # type: ignore[attr-defined]
F = ReferenceIndex.__table__.c  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredResource:
    resource_type: str
    resource_id: str
    version_id: int
    patient_id: str | None
    last_updated: datetime
    deleted: bool
    body: bytes  # the stored JSON; empty for a deletion

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


@dataclass(frozen=True)
class CurrentState:
    version_id: int
    patient_id: str | None
    deleted: bool


@dataclass
class Write:
    """One change; ``resource`` is validated JSON (None for a delete)."""

    action: Literal["create", "update", "delete"]
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None = None


Allowed = Collection[str] | None  # resident ids a caller may see; None: no restriction


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every one the exchange stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def new_id() -> str:
    return str(uuid.uuid4())


class ResourceRepository:
    def __init__(self, engine: Engine, vault: Vault, blind: BlindIndex, clock: Clock) -> None:
        self.engine = engine
        self._vault = vault
        self._blind = blind
        self._clock = clock

    # -- writes ---------------------------------------------------------------------------

    def current(self, resource_type: str, resource_id: str,
                session: Session | None = None) -> CurrentState | None:
        stmt = select(R.version_id, R.patient_id, R.deleted).where(
            R.resource_type == resource_type, R.resource_id == resource_id, R.is_current)
        row = self._one(stmt, session)
        return None if row is None else CurrentState(row[0], row[1], bool(row[2]))

    def apply(self, writes: Sequence[Write]) -> list[StoredResource]:
        """Apply every write in one database transaction: all of them, or none.

        A resource may appear once per call (FHIR forbids twice in one transaction).
        """
        # Data keys are made first, in their own commits: a key must never exist only in a
        # transaction that may yet roll back while its ciphertext is cached elsewhere.
        for write in writes:
            if write.resource is not None:
                owner = compartment_of({**write.resource, "id": write.resource_id})
                self._vault.ensure_key(owner or DIRECTORY_OWNER)
        try:
            with Session(self.engine) as session, session.begin():
                rows: list[dict[str, Any]] = []
                index = _IndexRows()
                stored = [self._stage(session, w, rows, index) for w in writes]
                session.execute(insert(ResourceRow), rows)
                index.insert(session)
                return stored
        except IntegrityError:
            raise Conflict("The resource was changed concurrently, or exists; retry.") \
                from None
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None

    def _stage(self, session: Session, write: Write, rows: list[dict[str, Any]],
               index: "_IndexRows") -> StoredResource:
        # A create's id is new: the primary key refuses a clash, so nothing is read first.
        state = None if write.action == "create" else \
            self.current(write.resource_type, write.resource_id, session)
        version = 1 if state is None else state.version_id + 1
        now = self._clock.now()
        if state is not None:
            session.execute(update(ResourceRow).where(
                R.resource_type == write.resource_type, R.resource_id == write.resource_id,
                R.is_current).values(is_current=False))
            for table, cols in ((TermIndex, T), (DateIndex, D), (ReferenceIndex, F)):
                session.execute(delete(table).where(
                    cols.resource_type == write.resource_type,
                    cols.resource_id == write.resource_id))
        if write.resource is None:
            patient_id = state.patient_id if state else None
            body = b""
        else:
            resource = dict(write.resource)
            resource["id"] = write.resource_id
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(version)
            meta["lastUpdated"] = to_instant(now)
            resource["meta"] = meta
            patient_id = compartment_of(resource)
            body = orjson.dumps(resource)
            index.add(resource, self._blind)
        sealed = self._vault.seal(patient_id or DIRECTORY_OWNER,
                                  (write.resource_type, write.resource_id, str(version)), body)
        rows.append({"resource_type": write.resource_type, "resource_id": write.resource_id,
                     "version_id": version, "is_current": True,
                     "deleted": write.resource is None, "patient_id": patient_id,
                     "last_updated": now, "content": sealed})
        return StoredResource(write.resource_type, write.resource_id, version, patient_id,
                              now, write.resource is None, body)

    def ingest(self, resources: Sequence[dict[str, Any]]) -> int:
        """Bulk-load new, already validated resources (with ids) in one transaction.

        For loading a community's records; every version is 1, so nothing is read first.
        """
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        index = _IndexRows()
        for original in resources:
            resource = dict(original)
            resource["meta"] = {**(resource.get("meta") or {}), "versionId": "1",
                                "lastUpdated": to_instant(now)}
            rtype, rid = resource["resourceType"], resource["id"]
            patient_id = compartment_of(resource)
            body = orjson.dumps(resource)
            rows.append({"resource_type": rtype, "resource_id": rid, "version_id": 1,
                         "is_current": True, "deleted": False, "patient_id": patient_id,
                         "last_updated": now, "content": self._vault.seal(
                             patient_id or DIRECTORY_OWNER, (rtype, rid, "1"), body)})
            index.add(resource, self._blind)
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(insert(ResourceRow), rows)
                index.insert(session)
        except IntegrityError:
            raise Conflict("A resource with that id exists already.") from None
        return len(rows)

    # -- reads ----------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str,
             version_id: int | None = None) -> StoredResource | None:
        where = [R.resource_type == resource_type, R.resource_id == resource_id]
        where.append(R.is_current if version_id is None else R.version_id == version_id)
        rows = self._fetch(select(RESOURCES).where(*where))
        return rows[0] if rows else None

    def history(self, resource_type: str, resource_id: str | None, allowed: Allowed,
                count: int, since: datetime | None = None) -> list[StoredResource]:
        where = [R.resource_type == resource_type]
        if resource_id is not None:
            where.append(R.resource_id == resource_id)
        if since is not None:
            where.append(R.last_updated >= since)
        where.extend(_allowed_filter(allowed))
        stmt = select(RESOURCES).where(*where).order_by(
            R.last_updated.desc(), R.resource_id, R.version_id.desc()).limit(count)
        return self._fetch(stmt)

    def compartment(self, patient_id: str, types: Iterable[str],
                    limit: int = 10_000) -> list[StoredResource]:
        types = list(types)
        stmt = select(RESOURCES).where(
            R.patient_id == patient_id, R.is_current, ~R.deleted,
            R.resource_type.in_(types)).order_by(R.resource_type, R.last_updated,
                                                 R.resource_id).limit(limit)
        return self._fetch(stmt)

    def erase(self, patient_id: str) -> tuple[int, int]:
        """Remove every version of a resident's records and their index entries, in one
        transaction; returns (resources, versions). The caller destroys the data key."""
        owned = select(R.resource_type, R.resource_id).where(
            R.patient_id == patient_id, R.is_current)
        try:
            with self.engine.begin() as conn:
                resources = int(conn.execute(
                    select(func.count()).select_from(owned.subquery())).scalar_one())
                for table in INDEX_TABLES:
                    conn.execute(delete(table).where(
                        tuple_(table.c.resource_type, table.c.resource_id).in_(owned)))
                versions = conn.execute(delete(RESOURCES).where(
                    R.patient_id == patient_id)).rowcount
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return resources, int(versions or 0)

    def consents_of(self, patient_id: str) -> list[StoredResource]:
        return self.compartment(patient_id, ["Consent"])

    def candidate_residents(self, query: SearchQuery) -> set[str | None]:
        """Residents with at least one match: whom the gate must decide about."""
        stmt = select(R.patient_id).where(*self._filters(query)).distinct()
        try:
            with self.engine.connect() as conn:
                return {row[0] for row in conn.execute(stmt)}
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None

    def residents_with(self, resource_type: str) -> set[str | None]:
        stmt = select(R.patient_id).where(R.resource_type == resource_type).distinct()
        with self.engine.connect() as conn:
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
            where = [*self._filters(query), *_allowed_filter(allowed)]
        if withhold:
            terms = [self._blind.term(SECURITY, f"{label.get('system')}|{label.get('code')}")
                     for label in withhold]
            where.append(R.resource_id.not_in(select(T.resource_id).where(
                T.resource_type == query.resource_type, T.param == SECURITY,
                T.term.in_(terms))))
        count_stmt = select(func.count()).select_from(RESOURCES).where(*where)
        total = int(self._one(count_stmt)[0])
        if query.summary_count or query.count == 0:
            return total, []
        stmt = select(RESOURCES).where(*where)
        order: list[Any] = []
        for key, descending in query.sort:
            if key == "_id":
                column: Any = R.resource_id
            elif key == "_lastUpdated":
                column = R.last_updated
            else:
                column = (select(func.min(D.low)).where(
                    D.resource_type == query.resource_type, D.param == key,
                    D.resource_id == R.resource_id).scalar_subquery())
            order.append(column.desc() if descending else column.asc())
        order.extend([R.resource_id] if neutral_order else [R.last_updated, R.resource_id])
        stmt = stmt.order_by(*order).offset(query.offset).limit(query.count)
        return total, self._fetch(stmt)

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

    def included(self, results: Sequence[StoredResource], includes: Sequence[Include],
                 revincludes: Sequence[Include], limit: int = 1000) -> list[StoredResource]:
        """Resources named by ``_include`` / ``_revinclude``; the gate decides on each."""
        if not results:
            return []
        found: dict[tuple[str, str], StoredResource] = {}
        ids = [r.resource_id for r in results]
        refs = [r.reference for r in results]
        with self.engine.connect() as conn:
            targets: set[str] = set()
            for inc in includes:
                stmt = select(F.target).where(
                    F.resource_type == inc.source_type, F.param == inc.param.name,
                    F.resource_id.in_(ids))
                for (target,) in conn.execute(stmt):
                    if inc.target_type is None or target.startswith(inc.target_type + "/"):
                        targets.add(target)
            rev: list[tuple[str, str]] = []
            for inc in revincludes:
                stmt = select(F.resource_type, F.resource_id).where(
                    F.resource_type == inc.source_type, F.param == inc.param.name,
                    F.target.in_(refs)).limit(limit)
                rev.extend((t, i) for t, i in conn.execute(stmt))
        wanted = {tuple(t.split("/", 1)) for t in targets} | set(rev)
        wanted -= {(r.resource_type, r.resource_id) for r in results}
        for rtype, rid in sorted(wanted)[:limit]:
            row = self.read(rtype, rid)
            if row is not None and not row.deleted:
                found[(rtype, rid)] = row
        return list(found.values())

    def consent_stamp(self, patient_id: str) -> str:
        """Changes whenever any of the resident's consents changes (any worker, any process)."""
        return self.consent_stamps([patient_id])[patient_id]

    def consent_stamps(self, patient_ids: Sequence[str]) -> dict[str, str]:
        """``consent_stamp`` for many residents in one query per 500 (a search's residents)."""
        stamps = {pid: _stamp(0, None, None) for pid in patient_ids}
        ids = list(stamps)
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(ids), 500):
                    stmt = select(R.patient_id, func.count(), func.max(R.last_updated),
                                  func.sum(R.version_id)).where(
                        R.resource_type == "Consent",
                        R.patient_id.in_(ids[start:start + 500])).group_by(R.patient_id)
                    for pid, count, latest, versions in conn.execute(stmt):
                        stamps[pid] = _stamp(count, latest, versions)
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        return stamps

    # -- internals --------------------------------------------------------------------------

    def _filters(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        rtype = query.resource_type
        where: list[ColumnElement[bool]] = [R.resource_type == rtype, R.is_current, ~R.deleted]
        for clause in query.clauses:
            where.append(self._clause(rtype, clause))
        return where

    def _clause(self, rtype: str, clause: Clause) -> ColumnElement[bool]:
        if clause.name == "_id":
            return R.resource_id.in_([str(v) for v in clause.values])
        if clause.name == "_lastUpdated":
            return or_(*(_instant_condition(v, R.last_updated)
                         for v in clause.values if isinstance(v, DateValue)))
        assert clause.param is not None
        if clause.chain is not None:
            return R.resource_id.in_(self._chain_ids(rtype, clause.param, clause.chain,
                                                     clause.values))
        return R.resource_id.in_(self._matching_ids(rtype, clause.param, clause.values))

    def _matching_ids(self, rtype: str, param: SearchParam, values: Sequence[Any]) -> Any:
        name = param.name
        if param.kind in ("token", "string"):
            terms = [self._blind.term(name, t) for t in _search_terms(param, values)]
            return select(T.resource_id).where(
                T.resource_type == rtype, T.param == name, T.term.in_(terms))
        if param.kind == "date":
            return select(D.resource_id).where(
                D.resource_type == rtype, D.param == name,
                or_(*(_date_condition(v, D.low, D.high) for v in values)))
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param == name,
            F.target.in_([v.target for v in values if isinstance(v, ReferenceValue)]))

    def _chain_ids(self, rtype: str, ref: SearchParam, chain: Chain,
                   values: Sequence[Any]) -> Any:
        target_ids = self._matching_ids(chain.target_type, chain.param, values)
        targets = select(literal(chain.target_type + "/") + R.resource_id).where(
            R.resource_type == chain.target_type, R.is_current, ~R.deleted,
            R.resource_id.in_(target_ids))
        return select(F.resource_id).where(
            F.resource_type == rtype, F.param == ref.name, F.target.in_(targets))

    def _fetch(self, stmt: Any) -> list[StoredResource]:
        try:
            with self.engine.connect() as conn:
                rows = list(conn.execute(stmt).mappings())
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None
        out = []
        for row in rows:
            owner = row["patient_id"] or DIRECTORY_OWNER
            body = self._vault.open(owner, (row["resource_type"], row["resource_id"],
                                            str(row["version_id"])), row["content"])
            out.append(StoredResource(row["resource_type"], row["resource_id"],
                                      row["version_id"], row["patient_id"],
                                      as_utc(row["last_updated"]), bool(row["deleted"]), body))
        return out

    def _one(self, stmt: Any, session: Session | None = None) -> Any:
        try:
            if session is not None:
                return session.execute(stmt).first()
            with self.engine.connect() as conn:
                return conn.execute(stmt).first()
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None


class _IndexRows:
    def __init__(self) -> None:
        self.terms: list[dict[str, Any]] = []
        self.dates: list[dict[str, Any]] = []
        self.references: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any], blind: BlindIndex) -> None:
        key = {"resource_type": resource["resourceType"], "resource_id": resource["id"]}
        entries = index_entries(resource, blind)
        self.terms.extend({**key, "param": p, "term": t} for p, t in entries.terms)
        self.dates.extend({**key, "param": p, "low": lo, "high": hi}
                          for p, lo, hi in entries.dates)
        self.references.extend({**key, "param": p, "target": t}
                               for p, t in entries.references)

    def insert(self, session: Session) -> None:
        for table, rows in ((TermIndex, self.terms), (DateIndex, self.dates),
                            (ReferenceIndex, self.references)):
            if rows:
                session.execute(insert(table), rows)


def _stamp(count: int, latest: Any, versions: Any) -> str:
    return f"{count}:{latest}:{versions}"


def _allowed_filter(allowed: Allowed) -> list[ColumnElement[bool]]:
    if allowed is None:
        return []
    return [R.patient_id.in_(sorted(allowed))]


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


def _date_condition(value: DateValue, low: Any, high: Any) -> ColumnElement[bool]:
    """FHIR date comparison of the stored range [low, high) against the searched one."""
    if value.prefix == "eq":
        return and_(low >= value.low, high <= value.high)
    if value.prefix == "ne":
        return or_(low < value.low, high > value.high)
    if value.prefix == "gt":
        return high > value.high
    if value.prefix == "ge":
        return high > value.low
    if value.prefix == "lt":
        return low < value.low
    return low < value.high  # le


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
