"""Redis as the state database's engine across replicas (`llm_router.redis`): responses and spend.

**Responses** (`RemoteResponses`): each stored response is also written to Redis
(`llm-router:response:<key>`, with its TTL, and bounded by `max_responses` through the index
`llm-router:responses`) before its answer's last event goes out, so a next turn finds it on any
replica; a replica that misses one locally reads it there and keeps a copy. A Redis that can't be
reached costs a request at most its timeout, and a response then lives on its own replica only.

**Spend** (`UsageReplication`): every replica keeps its ledger in its own database first: nothing
waits on Redis, and nothing is lost when Redis restarts or can't be reached. What crosses replicas
is each one's daily totals (by key, team, requested model and serving group), a snapshot per
(replica, day) stamped with that replica's last ledger row counted in it (`llm-router:usage:days`,
versions in `llm-router:usage:versions`). Each replica publishes its own, and copies every other
replica's newer snapshots into its database; a snapshot replaces an older one and never a newer one
(compared in Redis, and again on the way in), so the order of writers doesn't matter. So:
- any replica's `llm-router usage`, `/v1/router/usage` and `spent()` see the whole fleet, from its
  own database, within about a second;
- a Redis that restarts empty is refilled at once: a new `llm-router:usage:epoch` tells every
  replica to publish everything its database holds, its own totals and its copies of the others'
  (so even a replica that is down meanwhile gets its totals back into Redis);
- per-request rows stay on the replica that served them (`llm-router usage --by request`).
One process per machine does this (whichever worker holds `<state_dir>/usage-sync.lock`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from typing import Any

import redis
import redis.asyncio

from router_config.gateway_config import RedisSettings, ResponsesStore
from router_plugins.shared import connect, keep_ticking
from router_plugins.state import periods
from router_plugins.state.database import StateDatabase
from router_plugins.state.responses import Kept
from router_plugins.state.spend import SpendLedger

log = logging.getLogger("llm_router.state.replicas")

RESPONSE_PREFIX = "llm-router:response:"
RESPONSES_INDEX = "llm-router:responses"
USAGE_DAYS = "llm-router:usage:days"
USAGE_VERSIONS = "llm-router:usage:versions"
USAGE_EPOCH = "llm-router:usage:epoch"
SYNC_LOCK = "usage-sync.lock"

_PUT_RESPONSE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', redis.call('TIME')[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[2], excess)
  for i = 1, #gone, 2 do redis.call('DEL', ARGV[6] .. gone[i]) end
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
"""

_PUBLISH_DAY = """
local had = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if had < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


class RemoteResponses:
    """Stored responses in Redis, for every replica: read on a local miss, written with every answer kept."""

    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings
        self._client: redis.asyncio.Redis | None = None
        self._put_script: Any = None
        self._reachable = True
        self._pending: set[asyncio.Task[Any]] = set()

    def _redis(self) -> redis.asyncio.Redis:
        if self._client is None:  # made in the worker's event loop, on first use
            self._client = connect(self._settings, redis.asyncio.Redis)
            self._put_script = self._client.register_script(_PUT_RESPONSE)
        return self._client

    async def get(self, key: str) -> Kept | None:
        try:
            value = await self._redis().get(RESPONSE_PREFIX + key)
        except redis.RedisError as exc:
            self._failed("reading a stored response", exc)
            return None
        self._answered()
        if value is None:
            return None
        header, _, body = value.partition(b"\n")
        fields = json.loads(header)
        return Kept(key, fields["owner"], fields["created"], fields["expires"], fields["stored"], fields["previous"], body or None)

    async def put(self, kept: Kept, settings: ResponsesStore) -> None:
        header = json.dumps({"owner": kept.owner, "created": kept.created, "expires": kept.expires, "stored": kept.stored,
                             "previous": kept.previous}).encode()
        try:
            self._redis()
            await self._put_script(keys=[RESPONSE_PREFIX + kept.key, RESPONSES_INDEX],
                                   args=[header + b"\n" + (kept.body or b""), int(settings.ttl_s * 1000), kept.expires,
                                         settings.max_responses, kept.key, RESPONSE_PREFIX])
        except redis.RedisError as exc:
            self._failed("storing a response (it is kept on this replica only)", exc)
            return
        self._answered()

    async def delete(self, key: str) -> None:
        try:
            pipe = self._redis().pipeline(transaction=True)
            pipe.delete(RESPONSE_PREFIX + key)
            pipe.zrem(RESPONSES_INDEX, key)
            await pipe.execute()
        except redis.RedisError as exc:
            self._failed("deleting a stored response", exc)

    def touch(self, keys: list[str], settings: ResponsesStore) -> None:
        """Extend the responses' lives, without the request waiting for it."""
        task = asyncio.get_running_loop().create_task(self._touch(keys, settings))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _touch(self, keys: list[str], settings: ResponsesStore) -> None:
        expires = time.time() + settings.ttl_s
        try:
            pipe = self._redis().pipeline(transaction=False)
            for key in keys:
                pipe.pexpire(RESPONSE_PREFIX + key, int(settings.ttl_s * 1000))
                pipe.zadd(RESPONSES_INDEX, {key: expires}, xx=True)
            await pipe.execute()
        except redis.RedisError as exc:
            self._failed("extending stored responses", exc)

    def _failed(self, doing: str, exc: Exception) -> None:
        if self._reachable:
            self._reachable = False
            log.warning("Redis at %s failed %s (%s: %s); stored responses are shared with other replicas again when it answers",
                        self._settings.address, doing, type(exc).__name__, exc)

    def _answered(self) -> None:
        if not self._reachable:
            self._reachable = True
            log.info("Redis at %s answers again: stored responses are shared with other replicas", self._settings.address)


class UsageReplication:
    """Every replica's daily spend totals in every replica's database, through Redis (see the module's docstring)."""

    def __init__(self, settings: RedisSettings, db: StateDatabase, ledger: SpendLedger) -> None:
        self._settings = settings
        self._db = db
        self._ledger = ledger
        self._client = connect(settings, redis.Redis)
        self._publish_day = self._client.register_script(_PUBLISH_DAY)
        self._lock_path = db.path.parent / SYNC_LOCK
        self._lock_fd: int | None = None
        self._epoch: bytes | None = None
        self._published: dict[tuple[str, str], int] = {}
        self._answering: bool | None = None
        self._thread = threading.Thread(target=self._run, name="llm-router-usage-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        keep_ticking(self._tick_if_elected, self._lost, "sharing spend totals")

    def _tick_if_elected(self) -> None:
        if self._elected():
            self.tick()
            self._answered()

    def _elected(self) -> bool:
        """Whether this process is the one of its machine that shares totals (it stays so until it exits)."""
        if self._lock_fd is not None:
            return True
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def tick(self) -> None:
        """Publish what changed here (everything, after Redis lost it), then copy in what changed elsewhere."""
        epoch = self._client.get(USAGE_EPOCH)
        if epoch is None:
            self._client.set(USAGE_EPOCH, uuid.uuid4().hex, nx=True)
            epoch = self._client.get(USAGE_EPOCH)
        if epoch != self._epoch:
            self._epoch, self._published = epoch, {}
        oldest = self._oldest_day()
        self._note_own_versions()
        self._publish(oldest)
        self._copy_in(oldest)

    def _note_own_versions(self) -> None:
        """Stamp each day this machine's ledger grew in with its newest row (a request's write doesn't, to stay cheap)."""
        reader, origin = self._db.reader(), self._db.origin
        (noted,) = reader.execute("SELECT coalesce(max(version), 0) FROM usage_versions WHERE origin = ?", (origin,)).fetchone()
        grown = reader.execute("SELECT day, max(seq) FROM spend WHERE seq > ? GROUP BY day", (noted,)).fetchall()
        if grown:
            self._db.submit(lambda connection: connection.executemany(
                "INSERT INTO usage_versions VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET version = max(version, excluded.version)",
                [(origin, day, seq) for day, seq in grown])).result()

    def _oldest_day(self) -> str:
        settings = self._ledger.settings
        return (periods.today(settings.zone) - dt.timedelta(days=settings.retention_days - 1)).isoformat()

    def _publish(self, oldest: str) -> None:
        everything = not self._published
        reader = self._db.reader()
        versions = reader.execute("SELECT origin, day, version FROM usage_versions WHERE day >= ?", (oldest,)).fetchall()
        for origin, day, version in versions:
            if (origin != self._db.origin and not everything) or self._published.get((origin, day), -1) >= version:
                continue
            rows = reader.execute("SELECT key_name, team, requested, served, requests, failures, input_tokens, output_tokens, cost, saving "
                                  "FROM usage_days WHERE origin = ? AND day = ?", (origin, day)).fetchall()
            self._publish_day(keys=[USAGE_VERSIONS, USAGE_DAYS], args=[f"{origin}|{day}", version, json.dumps(rows)])
            self._published[(origin, day)] = version
        stale = [field for field in self._client.hkeys(USAGE_VERSIONS) if field.decode().partition("|")[2] < oldest]
        if stale:
            self._client.hdel(USAGE_VERSIONS, *stale)
            self._client.hdel(USAGE_DAYS, *stale)

    def _copy_in(self, oldest: str) -> None:
        theirs = {field.decode(): int(version) for field, version in self._client.hgetall(USAGE_VERSIONS).items()}
        known = {f"{origin}|{day}": version for origin, day, version in
                 self._db.reader().execute("SELECT origin, day, version FROM usage_versions").fetchall()}
        wanted = [field for field, version in theirs.items()
                  if not field.startswith(self._db.origin + "|") and field.partition("|")[2] >= oldest and version > known.get(field, -1)]
        if not wanted:
            return
        snapshots = [(field, theirs[field], blob) for field, blob in zip(wanted, self._client.hmget(USAGE_DAYS, wanted)) if blob is not None]
        self._db.submit(lambda connection: _replace_days(connection, snapshots)).result()

    def _answered(self) -> None:
        if self._answering is not True:
            if self._answering is False:
                log.info("Redis at %s answers again: spend totals are shared with the other replicas again", self._settings.address)
            self._answering = True

    def _lost(self, exc: redis.RedisError) -> None:
        if self._answering is not False:
            self._answering = False
            log.warning("Redis at %s is unreachable (%s: %s): this replica's spend is recorded here and shared when it answers; "
                        "usage reports here miss other replicas' newest requests meanwhile", self._settings.address, type(exc).__name__, exc)


def _replace_days(connection: sqlite3.Connection, snapshots: list[tuple[str, int, bytes]]) -> None:
    """Other replicas' newer daily snapshots, each replacing the older copy of its (replica, day)."""
    for field, version, blob in snapshots:
        origin, _, day = field.partition("|")
        had = connection.execute("SELECT version FROM usage_versions WHERE origin = ? AND day = ?", (origin, day)).fetchone()
        if had is not None and had[0] >= version:
            continue
        connection.execute("DELETE FROM usage_days WHERE origin = ? AND day = ?", (origin, day))
        connection.executemany("INSERT INTO usage_days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               [(origin, day, *row) for row in json.loads(blob)])
        connection.execute("INSERT OR REPLACE INTO usage_versions VALUES (?, ?, ?)", (origin, day, version))
