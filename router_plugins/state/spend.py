"""The spend ledger: what each request cost, who made it and where it went; never its text, never a key.

One row per request that reached LiteLLM, on every inference route and API, streamed or not, a
fallback's included (the row names the group that served): its cost (LiteLLM's response_cost, from
its cost map or the deployment's configured price), its tokens, the key's name and team, the model
asked for, the group that served, the routing reason and the status. For an `auto` request, also
its baseline: what the same tokens would have cost on the first group of `routing.complex`; the
saving is the baseline less the cost.

Each row is written with its day's totals (by key, team, requested model and serving group) in one
transaction, so totals and rows never disagree. Reports and the spend of a key or team in a period
read the totals: this machine's, and other replicas' as Redis brings them (replicas.py). The API
for budgets is `spent`.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from router_config.gateway_config import SpendSettings
from router_plugins.state import periods
from router_plugins.state.database import StateDatabase
from router_plugins.state.periods import Period

Scope = Literal["key", "team"]
By = Literal["key", "team", "model", "day"]
BY: tuple[By, ...] = ("key", "team", "model", "day")


@dataclass(slots=True)
class SpendRow:
    request_id: str
    """LiteLLM's call id (the answer's x-litellm-call-id)."""
    at: float
    key_name: str
    team: str
    api: str
    requested: str
    served: str
    reason: str
    status: int
    stream: bool
    input_tokens: int
    output_tokens: int
    cost: float
    baseline: float | None
    """auto requests only: what the same tokens would have cost on routing.complex's first group."""
    latency_ms: float

    @property
    def saving(self) -> float:
        return 0.0 if self.baseline is None else self.baseline - self.cost


_INSERT = """INSERT INTO spend (request_id, at, day, key_name, team, api, requested, served, reason, status, stream,
                                input_tokens, output_tokens, cost, baseline, latency_ms)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_ADD_TO_DAY = """INSERT INTO usage_days VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)
                 ON CONFLICT DO UPDATE SET requests = requests + 1, failures = failures + excluded.failures,
                     input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
                     cost = cost + excluded.cost, saving = saving + excluded.saving"""
_COLUMNS = {"key": ("key_name", "team"), "team": ("team",), "model": ("served",), "day": ("day",)}
_SHOWN = {"key_name": "key", "served": "model"}


@dataclass(frozen=True)
class Usage:
    """One line of a report: totals for one key, team, model or day."""

    group: dict[str, str]
    requests: int
    failures: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    saving_usd: float

    def as_json(self) -> dict[str, Any]:
        return {**self.group, **{k: v for k, v in asdict(self).items() if k != "group"}}


@dataclass(frozen=True)
class Report:
    by: By
    since: dt.date
    time_zone: str
    lines: list[Usage]

    @property
    def total(self) -> Usage:
        return Usage({}, *(sum(getattr(u, f) for u in self.lines) for f in ("requests", "failures", "input_tokens", "output_tokens")),
                     round(sum(u.cost_usd for u in self.lines), 6), round(sum(u.saving_usd for u in self.lines), 6))

    def as_json(self) -> dict[str, Any]:
        return {"by": self.by, "since": self.since.isoformat(), "time_zone": self.time_zone,
                "data": [u.as_json() for u in self.lines], "total": self.total.as_json()}


@dataclass(frozen=True)
class GroupTotals:
    """One serving group's requests, tokens and spend in a bucket."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Bucket:
    start: float
    """Unix time the bucket begins; it ends bucket_s later."""
    requests: int
    failures: int
    """Requests whose client got an error (status >= 400)."""
    p50_ms: float | None
    p95_ms: float | None
    """Latency of the bucket's answered requests (status < 400), nearest rank; None without one."""
    saving_usd: float
    """`auto`'s saving: baseline less cost."""
    groups: dict[str, GroupTotals]


@dataclass(frozen=True)
class Series:
    """This machine's ledger rows in consecutive buckets of bucket_s seconds, the last one holding `now`."""

    bucket_s: float
    buckets: list[Bucket]
    groups: list[str]
    """The serving groups seen, most expensive first (then by requests)."""
    key_cost: dict[tuple[str, str], float]
    """Spend by (key name, team) over the whole series."""

    @property
    def start(self) -> float:
        return self.buckets[0].start

    @property
    def end(self) -> float:
        return self.buckets[-1].start + self.bucket_s


_SERIES_MARGIN_S = 300.0
"""How far before a series' start the bisection begins: a row's time and its commit order disagree by a
request's duration (its `at` is when it began), and rows before the start are then skipped by time."""


class SpendLedger:
    def __init__(self, db: StateDatabase, settings: SpendSettings) -> None:
        self._db = db
        self.settings = settings
        """Replaced by a reload."""
        db.maintain(self._prune)

    @property
    def _zone(self) -> ZoneInfo:
        return self.settings.zone

    @property
    def origin(self) -> str:
        return self._db.origin

    async def record(self, row: SpendRow) -> None:
        """Write the row and its day's totals; returns once committed. (A request is recorded once: its
        caller, router_plugins/accounting.py, sees to it.)"""
        await self._db.write(lambda connection: self._insert(connection, row))

    def _insert(self, connection: sqlite3.Connection, row: SpendRow) -> None:
        day = periods.day_of(row.at, self._zone)
        connection.execute(_INSERT, (row.request_id, row.at, day, row.key_name, row.team, row.api, row.requested, row.served,
                                     row.reason, row.status, int(row.stream), row.input_tokens, row.output_tokens, row.cost,
                                     row.baseline, row.latency_ms))
        connection.execute(_ADD_TO_DAY, (self.origin, day, row.key_name, row.team, row.requested, row.served, int(row.status >= 400),
                                         row.input_tokens, row.output_tokens, row.cost, row.saving))

    # ---- reading -------------------------------------------------------------------------

    def spent(self, scope: Scope, name: str, period: Period, now: float | None = None) -> float:
        """What a key (by name) or a team has spent in the current day, week or month, in dollars: every
        worker's requests as soon as their rows are committed, other replicas' as Redis brings them
        (within about a second). The budget check reads this."""
        first = periods.current(period, self._zone, now).first_day.isoformat()
        column = "key_name" if scope == "key" else "team"
        (total,) = self._db.reader().execute(f"SELECT coalesce(sum(cost), 0) FROM usage_days WHERE {column} = ? AND day >= ?",
                                             (name, first)).fetchone()
        return float(total)

    def report(self, by: By, since: dt.date, key: tuple[str, str] | None = None) -> Report:
        """Totals since a day, by key, team, serving model or day, most expensive first (by day: in order).
        key: (name, team) to see one key's usage only."""
        columns = _COLUMNS[by]
        where, args = "day >= ?", [since.isoformat()]
        if key is not None:
            where += " AND key_name = ? AND team = ?"
            args += list(key)
        order = "day" if by == "day" else "sum(cost) DESC, sum(requests) DESC"
        selected = ", ".join(columns)
        rows = self._db.reader().execute(
            f"SELECT {selected}, sum(requests), sum(failures), sum(input_tokens), sum(output_tokens), sum(cost), sum(saving) "
            f"FROM usage_days WHERE {where} GROUP BY {selected} ORDER BY {order}", args).fetchall()
        lines = [Usage({_SHOWN.get(c, c): v for c, v in zip(columns, r)}, *r[len(columns):len(columns) + 4],
                       round(r[-2], 6), round(r[-1], 6)) for r in rows]
        return Report(by, since, self.settings.time_zone, lines)

    def requests(self, since: dt.date) -> Iterator[dict[str, Any]]:
        """This machine's rows since a day, oldest first: one per request (export)."""
        reader = self._db.reader()
        cursor = reader.execute(
            "SELECT request_id, at, day, key_name, team, api, requested, served, reason, status, stream, input_tokens, output_tokens, "
            "cost, baseline, latency_ms FROM spend WHERE seq >= ? AND day >= ? ORDER BY seq",
            (_first_seq_from(reader, self._start_of(since)), since.isoformat()))
        names = [d[0] for d in cursor.description]
        for values in cursor:
            row = dict(zip(names, values))
            row["stream"] = bool(row["stream"])
            row["at"] = dt.datetime.fromtimestamp(row["at"], self._zone).isoformat(timespec="milliseconds")
            yield row

    def series(self, since_s: float, bucket_s: float, now: float | None = None) -> Series:
        """This machine's requests, failures, latency percentiles, tokens and spend by serving group, and
        `auto`'s saving, in buckets of bucket_s seconds covering the last since_s (the status page's charts).
        Buckets are aligned to multiples of bucket_s since the epoch; the last holds `now`. Reads only the
        rows since the start (found by bisection) in one read transaction, aggregated by SQLite."""
        count = max(1, round(since_s / bucket_s))
        end = (int((time.time() if now is None else now) // bucket_s) + 1) * bucket_s
        start = end - count * bucket_s
        reader = self._db.reader()
        reader.execute("BEGIN")
        try:
            first = _first_seq_from(reader, start - _SERIES_MARGIN_S)
            rows = "FROM spend WHERE seq >= :first AND at >= :start AND at < :end"
            args = {"first": first, "start": start, "end": end, "size": bucket_s}
            index = "CAST((at - :start) / :size AS INTEGER)"
            totals = reader.execute(
                f"SELECT {index} AS i, served, count(*), sum(status >= 400), sum(input_tokens), sum(output_tokens), sum(cost), "
                f"sum(coalesce(baseline - cost, 0)) {rows} GROUP BY i, served", args).fetchall()
            ranks = reader.execute(
                f"SELECT i, latency_ms, n, c FROM (SELECT i, latency_ms, row_number() OVER (PARTITION BY i ORDER BY latency_ms) AS n, "
                f"count(*) OVER (PARTITION BY i) AS c FROM (SELECT {index} AS i, latency_ms {rows} AND status < 400)) "
                "WHERE n = (c * 50 + 99) / 100 OR n = (c * 95 + 99) / 100", args).fetchall()
            keys = reader.execute(f"SELECT key_name, team, sum(cost) {rows} GROUP BY key_name, team", args).fetchall()
        finally:
            reader.execute("COMMIT")
        groups: list[dict[str, GroupTotals]] = [{} for _ in range(count)]
        counted = [[0, 0, 0.0] for _ in range(count)]  # requests, failures, saving
        by_group: dict[str, tuple[float, int]] = {}
        for i, served, requests, failures, input_tokens, output_tokens, cost, saving in totals:
            groups[i][served] = GroupTotals(requests, input_tokens, output_tokens, cost)
            counted[i][0] += requests
            counted[i][1] += failures
            counted[i][2] += saving
            spent, made = by_group.get(served, (0.0, 0))
            by_group[served] = (spent + cost, made + requests)
        percentiles: list[dict[int, float]] = [{} for _ in range(count)]
        for i, latency, n, c in ranks:
            for p in (50, 95):
                if n == (c * p + 99) // 100:
                    percentiles[i][p] = latency
        buckets = [Bucket(start + i * bucket_s, int(counted[i][0]), int(counted[i][1]), percentiles[i].get(50), percentiles[i].get(95),
                          counted[i][2], groups[i]) for i in range(count)]
        order = sorted(by_group, key=lambda g: (-by_group[g][0], -by_group[g][1], g))
        return Series(bucket_s, buckets, order, {(k, t): cost for k, t, cost in keys})

    def since(self, text: str, now: float | None = None) -> dt.date:
        """The first day of a `--since`; raises periods.BadSince."""
        return periods.parse_since(text, self._zone, now)

    def _start_of(self, day: dt.date) -> float:
        return dt.datetime.combine(day, dt.time(), self._zone).timestamp()

    def _prune(self, connection: sqlite3.Connection, now: float) -> None:
        oldest = periods.today(self._zone, now) - dt.timedelta(days=self.settings.retention_days - 1)
        connection.execute("DELETE FROM spend WHERE seq < ?", (_first_seq_from(connection, self._start_of(oldest)),))
        connection.execute("DELETE FROM usage_days WHERE day < ?", (oldest.isoformat(),))
        connection.execute("DELETE FROM usage_versions WHERE day < ?", (oldest.isoformat(),))


def _first_seq_from(connection: sqlite3.Connection, at: float) -> int:
    """The first row made at or after `at`, found by bisecting the rows by seq: a row's seq follows the order
    rows were committed in, which is their time's (give or take the milliseconds between two workers), and
    an index on the day would cost every request's write a page more."""
    low, high = connection.execute("SELECT coalesce(min(seq), 0), coalesce(max(seq), -1) + 1 FROM spend").fetchone()
    while low < high:
        middle = (low + high) // 2
        seq, made = connection.execute("SELECT seq, at FROM spend WHERE seq >= ? ORDER BY seq LIMIT 1", (middle,)).fetchone()
        if made >= at:
            high = middle
        else:
            low = seq + 1
    return low
