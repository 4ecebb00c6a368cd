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

from router_config.gateway_config import DifficultySetting, SpendLimit

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
    budget: SpendLimit | None = None
    """Dollars per period this key may spend on priced models (router_plugins/budgets.py)."""

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
    _teams: dict[str, SpendLimit] = field(default_factory=dict)
    """Team budgets, the keys file's `teams:`."""
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

    def team_budget(self, team: str) -> SpendLimit | None:
        self._reload_if_changed()
        return self._teams.get(team)

    def team_budgets(self) -> dict[str, SpendLimit]:
        self._reload_if_changed(force=True)
        return dict(self._teams)

    def learn(self, keys: Iterable[TeamKey]) -> None:
        """Keys other replicas hold: new ones are added, changes (a budget) applied, revocations never undone."""
        with self._merge_lock:
            shared = dict(self._shared)
            for key in keys:
                had = shared.get(key.sha256)
                shared[key.sha256] = replace(key, revoked=True) if had is not None and had.revoked else key
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
            difficulty: DifficultySetting | None = None, budget: SpendLimit | None = None) -> str:
        """Create a key and return it; only its hash is stored."""
        with self._lock:
            entries, teams = self._read_file()
            if any(e["name"] == name and not e.get("revoked") for e in entries):
                raise KeyFileError(f"a key named '{name}' already exists; revoke it first or pick another name")
            key = KEY_PREFIX + secrets.token_urlsafe(32)
            entry: dict[str, object] = {"name": name, "team": team, "sha256": hash_key(key), "models": list(models)}
            if rpm is not None:
                entry["rpm"] = rpm
            if difficulty is not None:
                entry["difficulty"] = difficulty.model_dump(exclude_none=True)
            if budget is not None:
                entry["budget"] = budget.text
            entries = [e for e in entries if e["name"] != name] + [entry]
            self._write(entries, teams)
            return key

    def set_difficulty(self, name: str, difficulty: DifficultySetting | None) -> None:
        """Give an active key its own difficulty threshold or share (None: the config's again)."""
        self._set(name, "difficulty", difficulty.model_dump(exclude_none=True) if difficulty is not None else None)

    def set_budget(self, name: str, budget: SpendLimit | None) -> None:
        """Give an active key a budget, or change or remove it (None)."""
        self._set(name, "budget", budget.text if budget is not None else None)

    def set_team_budget(self, team: str, budget: SpendLimit | None) -> None:
        """Give a team a budget, or change or remove it (None). It holds for all the team's keys together."""
        with self._lock:
            entries, teams = self._read_file()
            if budget is None:
                teams.pop(team, None)
            else:
                teams[team] = {"budget": budget.text}
            self._write(entries, teams)

    def _set(self, name: str, field_name: str, value: object) -> None:
        with self._lock:
            entries, teams = self._read_file()
            matching = [e for e in entries if e["name"] == name and not e.get("revoked")]
            if not matching:
                raise KeyFileError(f"no active key named '{name}'")
            for e in matching:
                e.pop(field_name, None)
                if value is not None:
                    e[field_name] = value
            self._write(entries, teams)

    def revoke(self, name: str) -> None:
        self._set(name, "revoked", True)

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
            entries, teams = self._read_file()
            keys = {k.sha256: k for k in (_to_key(e) for e in entries)}
            budgets = {str(team): _budget_of(f"team '{team}'", (entry or {}).get("budget"), f"--team {team}") for team, entry in teams.items()}
            with self._merge_lock:
                self._keys, self._mtime = keys, mtime
                self._teams = {team: budget for team, budget in budgets.items() if budget is not None}
                self._merge()

    def _read_file(self) -> tuple[list[dict], dict[str, dict]]:
        """The keys file's key entries and its teams."""
        try:
            raw = yaml.safe_load(self.path.read_text()) or {}
        except FileNotFoundError:
            return [], {}
        except yaml.YAMLError as exc:
            raise KeyFileError(f"{self.path}: not valid YAML: {exc}")
        entries = raw.get("keys", []) if isinstance(raw, dict) else None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "name" in e and "sha256" in e for e in entries):
            raise KeyFileError(f"{self.path}: `keys` must be a list of entries with name and sha256; recreate it with `llm-router keys add`")
        teams = raw.get("teams") or {}
        if not isinstance(teams, dict) or not all(isinstance(t, dict) for t in teams.values()):
            raise KeyFileError(f"{self.path}: `teams` must map a team to its settings ({{red: {{budget: 200/month}}}}); "
                               "set a team's budget with `llm-router keys budget --team TEAM 200/month`")
        return entries, teams

    def _write(self, entries: list[dict], teams: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("# Managed by `llm-router keys`. Only SHA-256 hashes of keys are stored.\n"
                       + yaml.safe_dump({"keys": entries, **({"teams": teams} if teams else {})}, sort_keys=False))
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
        budget=_budget_of(f"key '{entry['name']}'", entry.get("budget"), str(entry["name"])),
        name=str(entry["name"]),
        team=str(entry.get("team", "")),
        sha256=str(entry["sha256"]),
        models=tuple(models) if isinstance(models, list) else (str(models),),
        rpm=entry.get("rpm"),
        revoked=bool(entry.get("revoked", False)),
        difficulty=difficulty,
    )


def _budget_of(whose: str, value: object, fix_target: str) -> SpendLimit | None:
    if value is None:
        return None
    try:
        return SpendLimit.model_validate(value)
    except ValidationError as exc:
        problem = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise KeyFileError(f"{whose}: budget: {problem}; fix it with `llm-router keys budget {fix_target} 50/month` (or none)") from None


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
