"""The state database: one SQLite file in the state folder, shared by every process of the machine.

Opened by each worker (and read by `llm-router usage`). WAL, so that readers never wait for a writer
and a writer never waits for readers; synchronous=NORMAL, so a commit is a write to the OS (it
survives the process being killed, SIGKILL included; a power cut may lose the last commits); and a
busy timeout for the moment two processes commit at once.

Writes go through one thread per process, which commits whatever has been queued meanwhile in one
transaction (a savepoint each, so one failing write fails alone). A caller awaits its write's
commit without blocking its event loop (the writer settles a transaction's awaiters in one call to
their loop): a request's row is durable when its callback returns.
Reads use a connection per thread. (While nobody else writes, an awaited write commits at once in
its caller's thread: see `write`.)

The schema is here, in one place, for both stores: the Responses store (responses.py) and the spend
ledger (spend.py). `meta` holds this database's origin, the id its rows carry to other replicas.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("llm_router.state")

T = TypeVar("T")
Write = Callable[[sqlite3.Connection], T]
Maintenance = Callable[[sqlite3.Connection, float], None]
"""Run now and then by the writer thread, with the time: deletes what has expired."""

FILE_NAME = "state.db"
BUSY_TIMEOUT_S = 10.0
_BATCH = 512
"""The most writes one transaction commits."""
_MAINTAIN_EVERY_S = 300.0
_LOCKED_RETRIES = 5
_CHECKPOINT_EVERY = 200
"""Writes committed in a caller's thread (whose connection never checkpoints) between two commits of the writer thread's."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);

-- The Responses store: one row per Responses answer, under a digest of the id its client got.
-- stored = 0: made with `store: false`, so nothing of it is kept but that it existed and whose it is.
-- previous: the key of the response it continued; body: zlib'd JSON of its own input, output and answer.
-- expires: its last use (made, or continued by a later turn) plus the TTL.
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    stored INTEGER NOT NULL,
    previous TEXT,
    body BLOB
);
CREATE INDEX IF NOT EXISTS responses_by_expiry ON responses (expires);
-- How many responses are kept, so that bounding them costs no count(*) scan.
CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
INSERT OR IGNORE INTO counts VALUES ('responses', 0);
CREATE TRIGGER IF NOT EXISTS responses_added AFTER INSERT ON responses
    BEGIN UPDATE counts SET n = n + 1 WHERE name = 'responses'; END;
CREATE TRIGGER IF NOT EXISTS responses_removed AFTER DELETE ON responses
    BEGIN UPDATE counts SET n = n - 1 WHERE name = 'responses'; END;

-- The spend ledger: one row per request this machine served. Never prompt or answer text, never a key.
-- seq: the rowid, increasing (rows are only ever deleted oldest first): the replicas' versions are seqs, and
-- rows are found by time by bisecting seqs (spend.py), which spares every write an index page.
CREATE TABLE IF NOT EXISTS spend (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at REAL NOT NULL,
    day TEXT NOT NULL,
    key_name TEXT NOT NULL,
    team TEXT NOT NULL,
    api TEXT NOT NULL,
    requested TEXT NOT NULL,
    served TEXT NOT NULL,
    reason TEXT NOT NULL,
    status INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    baseline REAL,
    latency_ms REAL NOT NULL
);

-- Daily totals by key, team, requested model and serving group: this machine's (origin = meta's)
-- kept with each row in one transaction, other replicas' copied from Redis (replicas.py).
-- version: the origin's last ledger row (seq) counted in that day, noted when it is shared (replicas.py).
CREATE TABLE IF NOT EXISTS usage_days (
    origin TEXT NOT NULL,
    day TEXT NOT NULL,
    key_name TEXT NOT NULL,
    team TEXT NOT NULL,
    requested TEXT NOT NULL,
    served TEXT NOT NULL,
    requests INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    saving REAL NOT NULL,
    PRIMARY KEY (origin, day, key_name, team, requested, served)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_days_by_key ON usage_days (key_name, day);
CREATE INDEX IF NOT EXISTS usage_days_by_team ON usage_days (team, day);
CREATE INDEX IF NOT EXISTS usage_days_by_day ON usage_days (day);
CREATE TABLE IF NOT EXISTS usage_versions (
    origin TEXT NOT NULL,
    day TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (origin, day)
) WITHOUT ROWID;
"""


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings every user of the file needs (autocommit: transactions are explicit)."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class _Busy(Exception):
    """Another connection holds the write lock."""


@dataclass
class _Queued:
    write: Write[Any]
    future: concurrent.futures.Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None
    """The loop an asyncio future belongs to; None for a concurrent.futures one."""


class StateDatabase:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        setup = connect(path)
        try:
            setup.execute("PRAGMA journal_mode = WAL")
            setup.executescript(SCHEMA)  # each statement idempotent: workers starting together may all run it
            setup.execute("INSERT OR IGNORE INTO meta VALUES ('origin', ?)", (uuid.uuid4().hex,))
            self.origin: str = setup.execute("SELECT value FROM meta WHERE name = 'origin'").fetchone()[0]
        finally:
            setup.close()
        self._readers = threading.local()
        self._queue: list[_Queued] = []
        self._wake = threading.Condition()
        self._maintenance: list[Maintenance] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._written_now = 0
        self._maintain_at = float("-inf")
        """When (monotonic) the maintenance tasks are next due."""

    # ---- reads ----------------------------------------------------------------------------

    def reader(self) -> sqlite3.Connection:
        """This thread's connection for reads."""
        connection = getattr(self._readers, "connection", None)
        if connection is None:
            connection = self._readers.connection = connect(self.path)
        return connection

    # ---- writes ---------------------------------------------------------------------------

    def submit(self, write: Write[T]) -> concurrent.futures.Future[T]:
        """Queue `write` (called with the writer's connection, inside a transaction); its future is
        done once that transaction has committed."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._enqueue(_Queued(write, future))
        return future

    async def write(self, write: Write[T]) -> T:
        """`submit`, awaited from an event loop (whose futures the writer settles in one call per transaction).

        While nothing is queued and no other process is writing, the write commits at once in the loop's
        thread instead (tens of microseconds, where handing it to the writer thread and back costs more
        CPU than the write itself); a write that would wait for a lock goes to the writer thread."""
        if not self._queue:
            try:
                result = self._write_now(write)
            except _Busy:
                pass
            else:
                self._written_now += 1
                if self._written_now % _CHECKPOINT_EVERY == 0 or time.monotonic() > self._maintain_at:
                    self.submit(lambda connection: None)  # the writer thread checkpoints and maintains as it commits
                return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Queued(write, future, loop))
        return await future

    def _write_now(self, write: Write[T]) -> T:
        connection = getattr(self._readers, "writer", None)
        if connection is None:
            connection = self._readers.writer = connect(self.path)
            connection.execute("PRAGMA busy_timeout = 0")  # never wait for a lock here: the writer thread does
            connection.execute("PRAGMA wal_autocheckpoint = 0")  # nor checkpoint: the writer thread's connection does
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _Busy() from exc
        try:
            result = write(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def _enqueue(self, queued: _Queued) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the state database is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llm-router-state-writer", daemon=True)
                self._thread.start()
            self._queue.append(queued)
            self._wake.notify()

    def maintain(self, task: Maintenance) -> None:
        """Have the writer thread run `task` every few minutes (and at its first batch)."""
        self._maintenance.append(task)

    def maintain_now(self) -> concurrent.futures.Future[None]:
        """Run the maintenance tasks now (they also run every few minutes)."""
        return self.submit(self._maintain)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        # The one connection of this process that checkpoints (SQLite's default, every 1,000 pages of WAL).
        connection = connect(self.path)
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
                if not batch and self._closed:
                    connection.close()
                    return
            if time.monotonic() > self._maintain_at:
                self._maintain_at = time.monotonic() + _MAINTAIN_EVERY_S
                batch.append(_Queued(self._maintain, concurrent.futures.Future()))
            self._commit(connection, batch)

    def _maintain(self, connection: sqlite3.Connection) -> None:
        now = time.time()
        for task in self._maintenance:
            task(connection, now)

    def _commit(self, connection: sqlite3.Connection, batch: list[_Queued]) -> None:
        for attempt in range(_LOCKED_RETRIES):
            try:
                outcomes = self._transaction(connection, batch)
                break
            except sqlite3.OperationalError as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if "locked" not in str(exc) or attempt == _LOCKED_RETRIES - 1:
                    log.error("state database %s: a write of %d change(s) failed: %s", self.path, len(batch), exc)
                    outcomes = [exc] * len(batch)
                    break
            except sqlite3.Error as exc:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                log.error("state database %s: a write of %d change(s) failed: %s", self.path, len(batch), exc)
                outcomes = [exc] * len(batch)
                break
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for queued, outcome in zip(batch, outcomes):
            if queued.loop is not None:
                by_loop.setdefault(queued.loop, []).append((queued.future, outcome))  # type: ignore[arg-type]
            elif isinstance(outcome, BaseException):
                queued.future.set_exception(outcome)
            else:
                queued.future.set_result(outcome[0])
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:
                pass  # that loop has closed: nobody awaits these any more

    @staticmethod
    def _transaction(connection: sqlite3.Connection, batch: list[_Queued]) -> list[Any]:
        outcomes: list[Any] = []
        connection.execute("BEGIN IMMEDIATE")
        for queued in batch:
            connection.execute("SAVEPOINT one")
            try:
                outcomes.append((queued.write(connection),))
                connection.execute("RELEASE one")
            except Exception as exc:  # this write fails alone
                connection.execute("ROLLBACK TO one")
                connection.execute("RELEASE one")
                outcomes.append(exc)
        connection.execute("COMMIT")
        return outcomes


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    """In the loop's thread: the outcomes of one transaction's writes."""
    for future, outcome in settled:
        if future.done():
            continue  # its awaiter was cancelled
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome[0])
