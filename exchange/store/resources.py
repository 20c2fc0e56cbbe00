"""Resource versions over encrypted rows: write, read and history, with their index rows.

Every change adds a version and makes it the current one; the index rows follow the current
version only. Bodies are sealed per resident (directory resources under one shared owner),
bound to type, id and version. The readers here turn rows back into ``StoredResource`` for
the other parts of the store as well (search, compartments).
"""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

import orjson
from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from exchange.errors import Conflict, DependencyUnavailable
from exchange.fhir.dates import to_instant
from exchange.fhir.references import RELATIVE_ONLY, LocalBases
from exchange.ports import Clock
from exchange.privacy.blind_index import BlindIndex
from exchange.privacy.envelope import Vault
from exchange.store.index_form import IndexForm
from exchange.store.indexing import compartment_of, index_entries
from exchange.store.tables import DateIndex, ReferenceIndex, ResourceRow, TermIndex
from exchange.store.units import reading, writing

DIRECTORY_OWNER = "_directory"
RESOURCES = ResourceRow.__table__  # type: ignore[attr-defined]
R = RESOURCES.c
T = TermIndex.__table__.c  # type: ignore[attr-defined]
D = DateIndex.__table__.c  # type: ignore[attr-defined]
F = ReferenceIndex.__table__.c  # type: ignore[attr-defined]
INDEX_TABLES = (TermIndex.__table__, DateIndex.__table__,  # type: ignore[attr-defined]
                ReferenceIndex.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredResource:
    resource_type: str
    resource_id: str
    version_id: int
    patient_id: str | None
    last_updated: datetime
    deleted: bool
    body: bytes  # the stored JSON; empty for a deletion
    holder: str | None = None  # the organization a record of no resident is held for

    @property
    def reference(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


@dataclass(frozen=True)
class CurrentState:
    version_id: int
    patient_id: str | None
    deleted: bool
    holder: str | None = None


@dataclass
class Write:
    """One change; ``resource`` is validated JSON (None for a delete)."""

    action: Literal["create", "update", "delete"]
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None = None
    # Whose record it is, where the gate found it otherwise than by the resource's own
    # Patient-compartment references (see gate/writing.py); None: by those.
    resident: str | None = None
    # The organization a record of no resident is held for (None: the directory's, or a
    # resident's).
    holder: str | None = None

    def owner(self, here: LocalBases) -> str | None:
        if self.resident is not None or self.resource is None:
            return self.resident
        return compartment_of({**self.resource, "id": self.resource_id}, here)


Allowed = Collection[str] | None  # resident ids a caller may see; None: no restriction


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; every one the exchange stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def new_id() -> str:
    return str(uuid.uuid4())


def allowed_filter(allowed: Allowed, holder: str | None = None) -> list[ColumnElement[bool]]:
    """The condition that keeps rows to the allowed residents (none for no restriction),
    and, given ``holder``, to the records of no resident held for that organization."""
    if allowed is None:
        return []
    if holder is None:
        return [R.patient_id.in_(sorted(allowed))]
    return [or_(R.patient_id.in_(sorted(allowed)), held_by(holder))]


def held_by(holder: str) -> ColumnElement[bool]:
    """The rows of the records of no resident held for the organization ``holder``."""
    return and_(R.patient_id.is_(None), R.holder == holder)


class ResourceVersions:
    def __init__(self, engine: Engine, vault: Vault, blind: BlindIndex, clock: Clock,
                 zone: tzinfo = UTC, here: LocalBases = RELATIVE_ONLY) -> None:
        self._engine = engine
        self._vault = vault
        self._blind = blind
        self._clock = clock
        self._zone = zone  # the community's: dates without a zone are indexed in it
        self._here = here  # the bases under which an absolute reference is to our records
        self.index = IndexForm(engine)  # searched only in the form written here

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def zone(self) -> tzinfo:
        """The zone dates without one are read in, as the index read them."""
        return self._zone

    # -- writes ---------------------------------------------------------------------------

    def current(self, resource_type: str, resource_id: str,
                conn: Connection | None = None) -> CurrentState | None:
        stmt = select(R.version_id, R.patient_id, R.deleted, R.holder).where(
            R.resource_type == resource_type, R.resource_id == resource_id, R.is_current)
        row = self.first(stmt, conn)
        return None if row is None else CurrentState(row[0], row[1], bool(row[2]), row[3])

    def apply(self, writes: Sequence[Write]) -> list[StoredResource]:
        """Apply every write atomically: all of them, or none. Within an operation's scope
        (``exchange.store.units``) they join its transaction, which commits with the
        operation's audit entry; outside one they commit on their own.

        A resource may appear once per call (FHIR forbids twice in one transaction).
        """
        try:
            with writing(self._engine) as conn:
                rows: list[dict[str, Any]] = []
                index = IndexRows()
                stored = [self._stage(conn, w, rows, index) for w in writes]
                conn.execute(insert(RESOURCES), rows)
                index.insert(conn)
                return stored
        except IntegrityError:
            raise Conflict("The resource was changed concurrently, or exists; retry.") \
                from None
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None

    def _stage(self, conn: Connection, write: Write, rows: list[dict[str, Any]],
               index: "IndexRows") -> StoredResource:
        # A create's id is new: the primary key refuses a clash, so nothing is read first.
        state = None if write.action == "create" else \
            self.current(write.resource_type, write.resource_id, conn)
        version = 1 if state is None else state.version_id + 1
        now = self._clock.now()
        if state is not None:
            conn.execute(update(RESOURCES).where(
                R.resource_type == write.resource_type, R.resource_id == write.resource_id,
                R.is_current).values(is_current=False))
            for table, cols in zip(INDEX_TABLES, (T, D, F), strict=True):
                conn.execute(delete(table).where(
                    cols.resource_type == write.resource_type,
                    cols.resource_id == write.resource_id))
        if write.resource is None:
            patient_id = state.patient_id if state else None
            holder = state.holder if state else None
            body = b""
        else:
            resource = dict(write.resource)
            resource["id"] = write.resource_id
            meta = dict(resource.get("meta") or {})
            meta["versionId"] = str(version)
            meta["lastUpdated"] = to_instant(now)
            resource["meta"] = meta
            patient_id = write.owner(self._here)
            holder = write.holder if patient_id is None else None
            body = orjson.dumps(resource)
            index.add(resource, self._blind, self._zone, self._here, patient_id)
        sealed = self._vault.seal(patient_id or DIRECTORY_OWNER,
                                  (write.resource_type, write.resource_id, str(version)), body)
        rows.append({"resource_type": write.resource_type, "resource_id": write.resource_id,
                     "version_id": version, "is_current": True,
                     "deleted": write.resource is None, "patient_id": patient_id,
                     "holder": holder, "last_updated": now, "content": sealed})
        return StoredResource(write.resource_type, write.resource_id, version, patient_id,
                              now, write.resource is None, body, holder)

    def ingest(self, resources: Sequence[dict[str, Any]]) -> int:
        """Bulk-load new, already validated resources (with ids) in one transaction.

        For loading a community's records; every version is 1, so nothing is read first.
        """
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        index = IndexRows()
        for original in resources:
            resource = dict(original)
            resource["meta"] = {**(resource.get("meta") or {}), "versionId": "1",
                                "lastUpdated": to_instant(now)}
            rtype, rid = resource["resourceType"], resource["id"]
            patient_id = compartment_of(resource, self._here)
            body = orjson.dumps(resource)
            rows.append({"resource_type": rtype, "resource_id": rid, "version_id": 1,
                         "is_current": True, "deleted": False, "patient_id": patient_id,
                         "last_updated": now, "content": self._vault.seal(
                             patient_id or DIRECTORY_OWNER, (rtype, rid, "1"), body)})
            index.add(resource, self._blind, self._zone, self._here, patient_id)
        try:
            with writing(self._engine) as conn:
                conn.execute(insert(RESOURCES), rows)
                index.insert(conn)
        except IntegrityError:
            raise Conflict("A resource with that id exists already.") from None
        return len(rows)

    # -- reads ----------------------------------------------------------------------------

    def read(self, resource_type: str, resource_id: str,
             version_id: int | None = None) -> StoredResource | None:
        where = [R.resource_type == resource_type, R.resource_id == resource_id]
        where.append(R.is_current if version_id is None else R.version_id == version_id)
        rows = self.fetch(select(RESOURCES).where(*where))
        return rows[0] if rows else None

    def history(self, resource_type: str, resource_id: str | None, allowed: Allowed,
                count: int, since: datetime | None = None,
                holder: str | None = None) -> list[StoredResource]:
        where = [R.resource_type == resource_type]
        if resource_id is not None:
            where.append(R.resource_id == resource_id)
        if since is not None:
            where.append(R.last_updated >= since)
        where.extend(allowed_filter(allowed, holder))
        stmt = select(RESOURCES).where(*where).order_by(
            R.last_updated.desc(), R.resource_id, R.version_id.desc()).limit(count)
        return self.fetch(stmt)

    def index_rows(self, rows: Sequence[StoredResource]) -> "IndexRows":
        """The index rows of stored versions, as writing them made them (for a rebuild)."""
        index = IndexRows()
        for row in rows:
            if row.body:
                index.add(orjson.loads(row.body), self._blind, self._zone, self._here,
                          row.patient_id)
        return index

    # -- rows, for every part that selects whole resource rows ------------------------------

    def fetch(self, stmt: Any) -> list[StoredResource]:
        """The rows ``stmt`` selects from the resource table, opened."""
        try:
            with reading(self._engine) as conn:
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
                                      as_utc(row["last_updated"]), bool(row["deleted"]), body,
                                      row.get("holder")))
        return out

    def first(self, stmt: Any, conn: Connection | None = None) -> Any:
        """The first row of ``stmt`` (on ``conn`` if given), or None."""
        try:
            if conn is not None:
                return conn.execute(stmt).first()
            with reading(self._engine) as own:
                return own.execute(stmt).first()
        except SQLAlchemyError:
            raise DependencyUnavailable("The record store is unavailable.") from None


class IndexRows:
    """The index rows of the resources one transaction writes, inserted together."""

    def __init__(self) -> None:
        self.terms: list[dict[str, Any]] = []
        self.dates: list[dict[str, Any]] = []
        self.references: list[dict[str, Any]] = []

    def add(self, resource: dict[str, Any], blind: BlindIndex, zone: tzinfo,
            here: LocalBases, owner: str | None) -> None:
        """``owner``: the resident whose record it is (None for the directory)."""
        key = {"resource_type": resource["resourceType"], "resource_id": resource["id"]}
        entries = index_entries(resource, blind, zone, here, owner)
        self.terms.extend({**key, "param": p, "term": t} for p, t in entries.terms)
        self.dates.extend({**key, "param": p, "low": lo, "high": hi}
                          for p, lo, hi in entries.dates)
        self.references.extend({**key, "param": p, "target": t}
                               for p, t in entries.references)

    def insert(self, conn: Connection) -> None:
        for table, rows in zip(INDEX_TABLES, (self.terms, self.dates, self.references),
                               strict=True):
            if rows:  # the Core table: the ORM's bulk path costs as much again per row
                conn.execute(insert(table), rows)
