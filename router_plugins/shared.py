"""What gateway replicas share through Redis (`llm_router.redis`): the team keys, conversations'
routing tiers (affinity), and whether a key's rpm can be counted exactly across all of them right now.

One thread per gateway process keeps it, so no request ever waits on Redis for it. Every tick:
- it runs one script that records this process as alive and counts the processes alive across all
  replicas (`llm-router:workers`), so that each knows its share of a key's rpm if Redis goes away;
- it learns the keys the other replicas' files hold and publishes those it knows that Redis lacks
  (`llm-router:keys`, sha256 -> name, team, models, rpm, revoked; hashes only). A key is only ever
  added or revoked, a revocation wins, and nothing is deleted, so replicas converge whatever order
  they write in, and a Redis that restarts empty is refilled at the next tick of any replica;
- a change between Redis answering and not is logged once, with what it means for limits.

While Redis answers, a team key's rpm is counted by LiteLLM's own limiter, in Redis, exactly across
every process (router_plugins/auth.py hands it the limit). While it doesn't, the door counts in each
process, each allowing ceil(rpm / N) for the N processes last seen alive.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Literal, TypeVar

import redis
import redis.asyncio
import redis.asyncio.retry
from litellm.constants import REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT
from redis.backoff import NoBackoff
from redis.retry import Retry

from router_config.gateway_config import DifficultySetting, RedisSettings, SpendLimit
from router_plugins.affinity import ConversationTiers
from router_plugins.keys import KeyFileError, KeyStore, TeamKey

log = logging.getLogger("llm_router.shared")

KEYS_HASH = "llm-router:keys"
WORKERS_ZSET = "llm-router:workers"
TICK_S = 0.5
_ALIVE_S = 5
"""A process that has not ticked for this long no longer counts."""
_TIMEOUT_S = 1.0
# After an outage LiteLLM's Redis clients keep away from Redis until their circuit breaker's
# recovery timeout has passed; counting rpm there before then would count it nowhere.
_EXACT_AGAIN_AFTER_S = REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT + 1

_HEARTBEAT = """
local now = tonumber(redis.call('TIME')[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], 3600)
return redis.call('ZCARD', KEYS[1])
"""

# Conversation tiers (router_plugins/affinity.py) as a log scored by Redis' own clock: each process
# adds what it routed, drops what has idled past the ttl, and reads what was added since its last
# read (everything still live, on its first), so replicas converge within a tick.
TIERS_LOG = "llm-router:conversation-tiers"
_EXCHANGE_TIERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i = 4, #ARGV do redis.call('ZADD', KEYS[1], now, ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('EXPIRE', KEYS[1], math.ceil(ttl) + 60)
local since = ARGV[2] == '' and (now - ttl) or tonumber(ARGV[2])
return {tostring(now), redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. since, '+inf', 'LIMIT', 0, tonumber(ARGV[3]))}
"""

RedisState = Literal["up", "recovering", "down"]
Client = TypeVar("Client", redis.Redis, redis.asyncio.Redis)


def keep_ticking(tick: Callable[[], None], lost: Callable[[redis.RedisError], None], doing: str) -> None:
    """A Redis-sharing thread's loop: `tick` every TICK_S, forever; a Redis error goes to `lost`, anything else
    is logged and the next tick tries again."""
    while True:
        try:
            tick()
        except redis.RedisError as exc:
            lost(exc)
        except Exception:
            log.exception("%s through Redis failed; trying again", doing)
        time.sleep(TICK_S)


def connect(settings: RedisSettings, client: type[Client]) -> Client:
    """A client of the Redis replicas share (redis.Redis, or redis.asyncio.Redis for an event loop), each
    operation bounded by a timeout and never retried: a failure is the answer, and the next try is the
    caller's."""
    options = {"password": settings.password(), "socket_timeout": _TIMEOUT_S, "socket_connect_timeout": _TIMEOUT_S}
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0) if client is redis.asyncio.Redis else Retry(NoBackoff(), 0)
    if settings.url:
        return client.from_url(settings.url, retry=retry, **options)
    return client(host=settings.host, port=settings.port, retry=retry, **options)


class SharedState:
    def __init__(self, settings: RedisSettings, keys: KeyStore | None, workers: int):
        self._settings = settings
        self._keys = keys
        self._processes = workers
        """Gateway processes alive across all replicas, as last seen (this replica's own until then)."""
        self._id = uuid.uuid4().hex
        self._client = connect(settings, redis.Redis)
        self._heartbeat = self._client.register_script(_HEARTBEAT)
        self._exchange_tiers = self._client.register_script(_EXCHANGE_TIERS)
        self._tiers: ConversationTiers | None = None
        self._outgoing_tiers: list[str] = []
        self._tiers_read_to = ""
        """Redis' time of the last read of the tiers log ('' before the first)."""
        self._tiers_lock = threading.Lock()
        self._answering: bool | None = None
        """Whether Redis answered the last tick; None before the first."""
        self._ever_answered = False
        self._exact_from: float | None = None
        """When LiteLLM's limiter counts in Redis (again): monotonic time, None while Redis doesn't answer."""
        self._published: dict[bytes, bytes] = {}
        self._theirs: dict[str, TeamKey | None] = {}
        self._thread = threading.Thread(target=self._run, name="llm-router-redis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def keep_tiers(self, tiers: ConversationTiers) -> None:
        """Share conversation tiers with every process of every replica, through Redis, each tick."""
        self._tiers = tiers
        tiers.share_with(self._queue_tier)

    def _queue_tier(self, conversation: str, tier: str) -> None:
        with self._tiers_lock:
            self._outgoing_tiers.append(f"{conversation}:{tier}")

    @property
    def state(self) -> RedisState:
        exact_from = self._exact_from  # read once: the Redis thread may clear it meanwhile
        if exact_from is None:
            return "down"
        return "up" if time.monotonic() >= exact_from else "recovering"

    @property
    def counts_rpm(self) -> bool:
        """Whether a key's rpm is counted in Redis, by LiteLLM's limiter, rather than by each process."""
        return self.state == "up"

    @property
    def processes(self) -> int:
        return self._processes

    def _run(self) -> None:
        keep_ticking(self._tick, self._lost, "sharing state")

    def _tick(self) -> None:
        pipe = self._client.pipeline(transaction=False)
        self._heartbeat(keys=[WORKERS_ZSET], args=[self._id, _ALIVE_S], client=pipe)
        pipe.hgetall(KEYS_HASH)
        processes, published = pipe.execute()
        self._processes = max(1, int(processes))
        if self._answering is not True:
            self._answered()
        if self._keys is not None:
            self._share_keys(published)
        if self._tiers is not None:
            self._share_tiers(self._tiers)

    def _share_tiers(self, tiers: ConversationTiers) -> None:
        with self._tiers_lock:
            outgoing, self._outgoing_tiers = self._outgoing_tiers, []
        try:
            read_to, entries = self._exchange_tiers(keys=[TIERS_LOG], args=[tiers.settings.ttl_s, self._tiers_read_to,
                                                                           tiers.settings.max_conversations, *outgoing])
        except redis.RedisError:
            with self._tiers_lock:  # sent again at the next tick that reaches Redis
                self._outgoing_tiers[:0] = outgoing[-tiers.settings.max_conversations:]
            raise
        self._tiers_read_to = read_to.decode() if isinstance(read_to, bytes) else str(read_to)
        for entry in entries:
            conversation, _, tier = (entry.decode() if isinstance(entry, bytes) else str(entry)).partition(":")
            tiers.learn(conversation, tier)

    def _share_keys(self, published: dict[bytes, bytes]) -> None:
        assert self._keys is not None
        if published != self._published:
            self._published = published
            self._theirs = {digest.decode(): _key_of(digest, entry) for digest, entry in published.items()}
            self._keys.learn(k for k in self._theirs.values() if k is not None)
        try:
            known = self._keys.all()
        except KeyFileError as exc:
            log.warning("not publishing this replica's keys: %s", exc)
            return
        pipe = self._client.pipeline(transaction=False)
        for key in known:
            had = self._theirs.get(key.sha256)
            if key.revoked and (had is None or not had.revoked):
                pipe.hset(KEYS_HASH, key.sha256, _entry_of(key))
            elif had is None:
                # Not HSET: a replica may have revoked it meanwhile, and a revocation wins.
                pipe.hsetnx(KEYS_HASH, key.sha256, _entry_of(key))
        if len(pipe):
            pipe.execute()

    def _answered(self) -> None:
        recovered = self._ever_answered
        self._answering = self._ever_answered = True
        self._exact_from = time.monotonic() + (_EXACT_AGAIN_AFTER_S if recovered else 0)
        if recovered:
            log.warning("Redis at %s answers again: team keys' rpm limits are exact across replicas again in %gs, when "
                        "LiteLLM's own Redis clients have come back to it", self._settings.address, _EXACT_AGAIN_AFTER_S)
        else:
            log.info("Redis at %s: replicas share team keys, rpm limits and LiteLLM's cooldowns through it", self._settings.address)

    def _lost(self, exc: redis.RedisError) -> None:
        if self._answering is False:
            return  # said so already
        self._answering = False
        self._exact_from = None
        log.warning("Redis at %s is unreachable (%s: %s): team keys' rpm limits fall back to per-process shares, each of this "
                    "replica's processes allowing ceil(rpm / %d) (the gateway processes last seen alive across replicas); keys "
                    "added or revoked on other replicas reach this one when Redis is back; requests are served meanwhile",
                    self._settings.address, type(exc).__name__, exc, self._processes)


def _entry_of(key: TeamKey) -> str:
    return json.dumps({"name": key.name, "team": key.team, "models": list(key.models), "rpm": key.rpm, "revoked": key.revoked,
                       "budget": key.budget.text if key.budget else None,
                       "difficulty": key.difficulty.model_dump(exclude_none=True) if key.difficulty else None})


def _key_of(digest: bytes, entry: bytes) -> TeamKey | None:
    """A published key, or None for an entry this version can't read (it is left as it is)."""
    try:
        e = json.loads(entry)
        return TeamKey(name=str(e["name"]), team=str(e["team"]), sha256=digest.decode(), models=tuple(str(m) for m in e["models"]),
                       rpm=None if e["rpm"] is None else int(e["rpm"]), revoked=bool(e["revoked"]),
                       budget=SpendLimit.model_validate(e["budget"]) if e.get("budget") else None,
                       difficulty=DifficultySetting.model_validate(e["difficulty"]) if e.get("difficulty") else None)
    except (ValueError, KeyError, TypeError):
        return None
