"""Units of work: one database transaction that a write and its audit entry share.

The road records every operation (``exchange.gate.recording``). An operation that writes
must commit its resources and its audit entry together, or neither: a write that commits
before its entry leaves data nobody can account for, and one that commits after a failed
entry was refused yet kept. So an operation runs in a *scope*; the first write in it begins
the scope's transaction, every later write and read in the scope runs on that transaction
(a transaction Bundle's reads see its writes), and the ledger appends the operation's entry
on it before the one commit.

A scope that never writes begins no transaction: reads run on connections of their own,
and their entries are group-committed by the ledger as before.

On SQLite the transaction begins ``IMMEDIATE``: it takes the write lock before it reads
the versions it will change, so two writers never both read version 3 and both write 4.
Each write within it is a savepoint, so that one batch entry that fails takes back only
its own rows. On PostgreSQL the ledger serialises its sequence numbers with a
transaction-scoped advisory lock (see ``lock_ledger``).

The scope is held in a context variable, so it follows the operation through every layer
without being passed, and concurrent requests (each in its own context) never share one.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

# Any fixed 64-bit number: the key of the advisory lock that orders ledger appends.
LEDGER_LOCK = 0x4C45444745520001


class Unit:
    """An operation's scope; ``connection`` is set once its first write begins."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None
        self._after_commit: list[Callable[[], object]] = []
        self._after_end: list[Callable[[], object]] = []
        # Objects staged in this transaction, visible to it alone until it commits (the
        # vault keeps data keys created here, so a rolled-back key is never used).
        self.staged: dict[Any, Any] = {}

    def attach(self, key: str, value: object) -> None:
        """Have the ledger entry this unit appends carry ``value`` under ``key``: a row
        written beside the ledger (a checkpoint, a verification's outcome) is then named
        by the entry that commits with it, and verify can pair the two."""
        self.staged[("attach", key)] = value

    def take_attachments(self) -> dict[str, object]:
        found = {k[1]: v for k, v in self.staged.items()
                 if isinstance(k, tuple) and k[:1] == ("attach",)}
        for key in found:
            del self.staged[("attach", key)]
        return found

    def after_commit(self, action: Callable[[], object]) -> None:
        """Run ``action`` once this unit has committed (at once if it never began)."""
        if self.connection is None:
            action()
        else:
            self._after_commit.append(action)

    def after_end(self, action: Callable[[], object]) -> None:
        """Run ``action`` once this unit has ended, committed or rolled back (at once if
        it never began): to forget what a cache learned from inside it."""
        if self.connection is None:
            action()
        else:
            self._after_end.append(action)


_current: ContextVar[Unit | None] = ContextVar("exchange_unit", default=None)


def current_unit(engine: Engine) -> Unit | None:
    """The begun unit of the present scope on ``engine``, if any."""
    unit = _current.get()
    if unit is None or unit.connection is None or unit.engine is not engine:
        return None
    return unit


def in_scope(engine: Engine) -> bool:
    """Whether an operation's scope on ``engine`` is open (begun or not)."""
    unit = _current.get()
    return unit is not None and unit.engine is engine


@contextmanager
def scope(engine: Engine) -> Iterator[Unit]:
    """An operation's unit of work: committed when the block ends, rolled back if it
    raises. A scope within a scope is the outer one (an operation is one commit)."""
    outer = _current.get()
    if outer is not None and outer.engine is engine:
        yield outer
        return
    unit = Unit(engine)
    token = _current.set(unit)
    try:
        yield unit
    except BaseException:
        _current.reset(token)
        if unit.connection is not None:
            try:
                _close(unit, commit=False)
            finally:
                _run(unit._after_end)
        raise
    _current.reset(token)  # what runs after the commit is outside the unit
    if unit.connection is not None:
        try:
            _close(unit, commit=True)
        finally:
            _run(unit._after_end)
        _run(unit._after_commit)


@contextmanager
def detached() -> Iterator[None]:
    """Step out of the present scope: writes in the block commit on their own (the
    ledger's group commit writes other operations' entries too, never in this one's)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


def _run(actions: list[Callable[[], object]]) -> None:
    for action in actions:
        action()


def after_end(engine: Engine, action: Callable[[], object]) -> None:
    """Run ``action`` when the present scope's transaction ends (now if none has begun)."""
    unit = current_unit(engine)
    if unit is None:
        action()
    else:
        unit.after_end(action)


def _close(unit: Unit, *, commit: bool) -> None:
    conn = unit.connection
    assert conn is not None
    try:
        transaction = conn.get_transaction()
        if transaction is not None:
            transaction.commit() if commit else transaction.rollback()
    finally:
        conn.close()
        unit.connection = None


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection to write on: within a scope, the scope's transaction (begun now if
    this is its first write) under a savepoint of its own; outside, a scope and
    transaction of its own, committed when the block ends."""
    unit = _current.get()
    if unit is None or unit.engine is not engine:
        # A scope of its own, so that what the write does on the way (a new data key)
        # joins its transaction rather than waiting on it for SQLite's write lock. Its
        # transaction is this write's alone: no savepoint is needed to take it back.
        with scope(engine) as own:
            yield _begin(own)
        return
    if unit.connection is None:
        _begin(unit)
    assert unit.connection is not None
    with unit.connection.begin_nested():
        yield unit.connection


def _begin(unit: Unit) -> Connection:
    conn = unit.engine.connect()
    conn.begin()
    try:
        begin_immediately(conn)
    except BaseException:
        conn.close()
        raise
    unit.connection = conn
    return conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection to read on: the scope's transaction once it has written (so that a
    read sees what the operation wrote), else a connection of its own."""
    unit = current_unit(engine)
    if unit is not None:
        assert unit.connection is not None
        yield unit.connection
        return
    with engine.connect() as conn:
        yield conn


def begin_immediately(conn: Connection) -> None:
    """Take SQLite's write lock now (the driver would take it at the first change, after
    the reads that decide what to change). Other databases begin as they do."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def lock_ledger(conn: Connection) -> None:
    """Serialise ledger appends until this transaction ends. SQLite's write lock does so
    already; PostgreSQL takes an advisory lock, so that no two transactions read one
    head and both append after it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LEDGER_LOCK})
