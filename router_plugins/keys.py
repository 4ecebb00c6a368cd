"""Team keys in a YAML file, stored only as SHA-256 hashes.

The gateway rereads the file when it changes, so `llm-router keys add/revoke` takes effect
on a running gateway without a restart. With several replicas sharing a Redis, each also knows
the keys the others' files hold (router_plugins/shared.py publishes them, hashes only).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from pydantic import ValidationError

from router_config.gateway_config import DifficultySetting

KEY_PREFIX = "sk-llmr-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TeamKey:
    name: str
    team: str
    sha256: str
    models: tuple[str, ...] = ("*",)
    rpm: int | None = None
    revoked: bool = False
    difficulty: DifficultySetting | None = None
    """The key's own threshold or share for `auto`'s difficulty score, in place of the config's."""

    def allows(self, group: str) -> bool:
        return "*" in self.models or group in self.models


class KeyFileError(Exception):
    pass


@dataclass
class KeyStore:
    path: Path
    _keys: dict[str, TeamKey] = field(default_factory=dict)
    """The keys file's."""
    _shared: dict[str, TeamKey] = field(default_factory=dict)
    """Other replicas' keys, learned through Redis. Never forgotten, so a Redis that restarts empty
    takes nothing away; revoking is the only change a key has, and it is never undone."""
    _known: dict[str, TeamKey] = field(default_factory=dict)
    """Both, a key revoked in either revoked: what lookups read."""
    _mtime: float | None = None
    _checked_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _merge_lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, key: str) -> TeamKey | None:
        digest = hash_key(key)
        found = self.by_digest(digest)
        if found is None:
            # A key added a moment ago must work at once: recheck the file on a miss.
            self._reload_if_changed(force=True)
            found = self._known.get(digest)
        return found

    def by_digest(self, digest: str) -> TeamKey | None:
        self._reload_if_changed()
        return self._known.get(digest)

    def all(self) -> list[TeamKey]:
        self._reload_if_changed(force=True)
        return sorted(self._known.values(), key=lambda k: k.name)

    def learn(self, keys: Iterable[TeamKey]) -> None:
        """Keys other replicas hold: new ones are added, revocations applied."""
        with self._merge_lock:
            shared = dict(self._shared)
            for key in keys:
                had = shared.get(key.sha256)
                if had is None:
                    shared[key.sha256] = key
                elif key.revoked and not had.revoked:
                    shared[key.sha256] = replace(had, revoked=True)
            if shared != self._shared:
                self._shared = shared
                self._merge()

    def _merge(self) -> None:
        known = dict(self._shared)
        for digest, key in self._keys.items():
            other = known.get(digest)
            known[digest] = replace(key, revoked=True) if other is not None and other.revoked else key
        self._known = known

    def add(self, name: str, team: str, models: tuple[str, ...] = ("*",), rpm: int | None = None,
            difficulty: DifficultySetting | None = None) -> str:
        """Create a key and return it; only its hash is stored."""
        with self._lock:
            entries = self._read()
            if any(e["name"] == name and not e.get("revoked") for e in entries):
                raise KeyFileError(f"a key named '{name}' already exists; revoke it first or pick another name")
            key = KEY_PREFIX + secrets.token_urlsafe(32)
            entry: dict[str, object] = {"name": name, "team": team, "sha256": hash_key(key), "models": list(models)}
            if rpm is not None:
                entry["rpm"] = rpm
            if difficulty is not None:
                entry["difficulty"] = difficulty.model_dump(exclude_none=True)
            entries = [e for e in entries if e["name"] != name] + [entry]
            self._write(entries)
            return key

    def set_difficulty(self, name: str, difficulty: DifficultySetting | None) -> None:
        """Give an active key its own difficulty threshold or share (None: the config's again)."""
        with self._lock:
            entries = self._read()
            matching = [e for e in entries if e["name"] == name and not e.get("revoked")]
            if not matching:
                raise KeyFileError(f"no active key named '{name}'")
            for e in matching:
                e.pop("difficulty", None)
                if difficulty is not None:
                    e["difficulty"] = difficulty.model_dump(exclude_none=True)
            self._write(entries)

    def revoke(self, name: str) -> None:
        with self._lock:
            entries = self._read()
            matching = [e for e in entries if e["name"] == name and not e.get("revoked")]
            if not matching:
                raise KeyFileError(f"no active key named '{name}'")
            for e in matching:
                e["revoked"] = True
            self._write(entries)

    def _reload_if_changed(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < 1.0:
            return
        self._checked_at = now
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime:
            keys = {k.sha256: k for k in (_to_key(e) for e in self._read())}
            with self._merge_lock:
                self._keys, self._mtime = keys, mtime
                self._merge()

    def _read(self) -> list[dict]:
        try:
            raw = yaml.safe_load(self.path.read_text()) or {}
        except FileNotFoundError:
            return []
        except yaml.YAMLError as exc:
            raise KeyFileError(f"{self.path}: not valid YAML: {exc}")
        entries = raw.get("keys", []) if isinstance(raw, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e and "sha256" in e for e in entries):
            raise KeyFileError(f"{self.path}: `keys` must be a list of entries with name and sha256; recreate it with `llm-router keys add`")
        return entries

    def _write(self, entries: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("# Managed by `llm-router keys`. Only SHA-256 hashes of keys are stored.\n"
                       + yaml.safe_dump({"keys": entries}, sort_keys=False))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._checked_at = 0.0


def _to_key(entry: dict) -> TeamKey:
    models = entry.get("models", ["*"])
    difficulty = None
    if entry.get("difficulty") is not None:
        try:
            difficulty = DifficultySetting.model_validate(entry["difficulty"])
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'difficulty'}: {e['msg']}" for e in exc.errors())
            raise KeyFileError(f"key '{entry['name']}': difficulty: {problems}; fix it with "
                               f"`llm-router keys difficulty {entry['name']} --share S` (or --threshold T, or --config-default)") from None
    return TeamKey(
        name=str(entry["name"]),
        team=str(entry.get("team", "")),
        sha256=str(entry["sha256"]),
        models=tuple(models) if isinstance(models, list) else (str(models),),
        rpm=entry.get("rpm"),
        revoked=bool(entry.get("revoked", False)),
        difficulty=difficulty,
    )


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class RateLimiter:
    """Requests per minute per key, a sliding window kept in this process.

    With N worker processes each allows ceil(rpm / N), so the gateway as a whole never lets a
    key exceed its limit (a key whose requests all land on one worker may get fewer).
    """

    def __init__(self, workers: int = 1) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._workers = workers

    def allow(self, key_id: str, rpm: int, among: int | None = None) -> bool:
        """among: how many processes share the limit (default: this gateway's workers)."""
        rpm = -(-rpm // (among or self._workers))
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key_id, deque())
            while hits and now - hits[0] >= 60.0:
                hits.popleft()
            if len(hits) >= rpm:
                return False
            hits.append(now)
            return True
