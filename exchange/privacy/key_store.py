"""The embedded key store: every owner's wrapped data key, in an SQLite file of the key
directory (``data-keys.db`` beside the key file), never in the exchange's database.

A database backup therefore holds ciphertext only. Destroying a wrapped key here (a
resident's erasure) leaves nothing that opens that resident's rows in any copy of the
database, whatever else remains: the live key file's key-encryption keys wrap nothing
that is left.

Schema (``PRAGMA user_version = 1``)::

    data_key(context BLOB PRIMARY KEY, key_id TEXT, wrapped BLOB)   -- WITHOUT ROWID
    mark(name TEXT PRIMARY KEY, value INTEGER)                      -- "destroyed": a count

``context`` is the wrap context (``b"data-key/" + owner``), ``wrapped`` is
``nonce (12) | AES-256-GCM(KEK[key_id], nonce, data key, aad = context)``.

Retention of retired wrapped keys: none. The file is opened with ``secure_delete=ON``, so
a deleted row (an erased resident's key) and the old bytes of a re-wrapped one (a KEK
rotation) are overwritten with zeros in the file as their transaction commits, and with
the rollback journal (``journal_mode=DELETE``), which holds a changed page's old image
only while its transaction runs and is deleted at commit. There is no write-ahead log to
keep old pages after a checkpoint. What the filesystem does with freed blocks (and an
SSD with worn-out cells) is below what a program can erase: keep the key directory on an
encrypted volume.

Durability and concurrency: ``synchronous=FULL``, so a data key is on disk before any
ciphertext under it can commit in the database (a database write that then rolls back
leaves at most an orphan key, which opens nothing and names no record). Writers take the
file's write lock (``BEGIN IMMEDIATE``) through ``exclusive()``; the key provider holds it
for every change of the key file too, so that processes never lose each other's
rotations, and two that create the first key of one owner at once both end with the one
that was stored first (insert-or-ignore, then read).
"""

import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from exchange.errors import KeyUnavailable

FORMAT = 1
BUSY_SECONDS = 60.0  # a rotation batch or a migration may hold the write lock a while

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS data_key (context BLOB PRIMARY KEY, key_id TEXT NOT NULL, "
    "wrapped BLOB NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS data_key_by_kek ON data_key (key_id)",
    "CREATE TABLE IF NOT EXISTS mark (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

Wrapped = tuple[str, bytes]  # (key id, wrapped bytes)


class SqliteKeyStore:
    def __init__(self, path: Path, *, create: bool) -> None:
        """Open the store at ``path``; make it (0600) only if ``create``, else a missing
        store is refused: an empty one would silently open nothing."""
        self.path = path
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._depth = 0
        try:
            if not path.exists():
                if not create:
                    raise KeyUnavailable(f"The key store {path.name} is missing from the "
                                         "key directory; without it no record opens.")
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                raise KeyUnavailable(f"The key store {path.name} is open to others; "
                                     "refusing to use it (chmod 600 it).")
            self._connection()
        except OSError:
            raise KeyUnavailable(f"The key store {path.name} could not be opened.") from None

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (a forked worker opens its own)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > FORMAT:
                raise KeyUnavailable("The key store is of a newer format than this exchange.")
            if version < FORMAT:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {FORMAT}")
                conn.execute("COMMIT")
        except sqlite3.Error:
            raise KeyUnavailable("The key store could not be read.") from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """The store's write lock, across threads and processes, for one transaction: it
        commits (durably) when the block ends, or rolls back if it raises. Re-entrant
        within a thread."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                raise KeyUnavailable("The key store is unavailable.") from None
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                conn.execute("COMMIT")
            except sqlite3.Error:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise KeyUnavailable("The key store could not be written.") from None

    def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._connection().execute(sql, args).fetchall()
            except sqlite3.Error:
                raise KeyUnavailable("The key store is unavailable.") from None

    def get(self, context: bytes) -> Wrapped | None:
        rows = self._run("SELECT key_id, wrapped FROM data_key WHERE context = ?", (context,))
        return (str(rows[0][0]), bytes(rows[0][1])) if rows else None

    def add(self, context: bytes, key_id: str, wrapped: bytes) -> bool:
        """Store a wrapped key unless ``context`` has one; whether this one was stored."""
        with self.exclusive():
            self._run("INSERT OR IGNORE INTO data_key (context, key_id, wrapped) "
                      "VALUES (?, ?, ?)", (context, key_id, wrapped))
            return bool(self._run("SELECT changes()")[0][0])

    def add_many(self, items: Iterable[tuple[bytes, str, bytes]]) -> None:
        with self.exclusive():
            for context, key_id, wrapped in items:
                self._run("INSERT OR IGNORE INTO data_key (context, key_id, wrapped) "
                          "VALUES (?, ?, ?)", (context, key_id, wrapped))

    def replace(self, context: bytes, key_id: str, wrapped: bytes) -> None:
        self._run("UPDATE data_key SET key_id = ?, wrapped = ? WHERE context = ?",
                  (key_id, wrapped, context))

    def delete(self, context: bytes) -> bool:
        """Destroy the wrapped key of ``context`` (zeroed in the file on commit)."""
        with self.exclusive():
            self._run("DELETE FROM data_key WHERE context = ?", (context,))
            gone = bool(self._run("SELECT changes()")[0][0])
            self._run("INSERT INTO mark (name, value) VALUES ('destroyed', 1) "
                      "ON CONFLICT (name) DO UPDATE SET value = value + 1")
            return gone

    def not_under(self, key_id: str, limit: int) -> list[tuple[bytes, str, bytes]]:
        rows = self._run("SELECT context, key_id, wrapped FROM data_key WHERE key_id != ? "
                         "LIMIT ?", (key_id, limit))
        return [(bytes(c), str(k), bytes(w)) for c, k, w in rows]

    def under(self, key_id: str, limit: int) -> list[tuple[bytes, str, bytes]]:
        rows = self._run("SELECT context, key_id, wrapped FROM data_key WHERE key_id = ? "
                         "LIMIT ?", (key_id, limit))
        return [(bytes(c), str(k), bytes(w)) for c, k, w in rows]

    def count(self, *, under: str | None = None, not_under: str | None = None) -> int:
        if under is not None:
            rows = self._run("SELECT count(*) FROM data_key WHERE key_id = ?", (under,))
        elif not_under is not None:
            rows = self._run("SELECT count(*) FROM data_key WHERE key_id != ?", (not_under,))
        else:
            rows = self._run("SELECT count(*) FROM data_key")
        return int(rows[0][0])

    def destroyed(self) -> int:
        rows = self._run("SELECT value FROM mark WHERE name = 'destroyed'")
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
