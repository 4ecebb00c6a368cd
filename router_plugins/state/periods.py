"""Days, weeks (from Monday) and months in the configured time zone (llm_router.spend.time_zone), and `--since`.

The ledger keeps daily totals under the day a request was made in that zone, so a day, a week and a
month are whole days there, and their spend is a sum of daily totals.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")

_SINCE = re.compile(r"(\d{1,4})([dw])\Z")


class BadSince(ValueError):
    """A `--since` (or `since=`) that names no period; its message says what to write."""


def day_of(at: float, zone: ZoneInfo) -> str:
    """The day (YYYY-MM-DD) a moment falls on in `zone`."""
    return dt.datetime.fromtimestamp(at, zone).date().isoformat()


def today(zone: ZoneInfo, now: float | None = None) -> dt.date:
    return (dt.datetime.now(zone) if now is None else dt.datetime.fromtimestamp(now, zone)).date()


@dataclass(frozen=True)
class Window:
    first_day: dt.date
    """The period's first day."""
    resets_at: dt.datetime
    """When the next period begins (aware, in the zone)."""


def current(period: Period, zone: ZoneInfo, now: float | None = None) -> Window:
    """The period `now` falls in."""
    day = today(zone, now)
    if period == "day":
        first, following = day, day + dt.timedelta(days=1)
    elif period == "week":
        first = day - dt.timedelta(days=day.weekday())
        following = first + dt.timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
    return Window(first, dt.datetime.combine(following, dt.time(), zone))


def parse_since(text: str, zone: ZoneInfo, now: float | None = None) -> dt.date:
    """The first day a `--since` covers: `7d` (the last 7 days, today included), `2w` (14 days), `today`,
    or a date (2026-12-01). Raise BadSince otherwise."""
    value = text.strip().lower()
    this_day = today(zone, now)
    if value == "today":
        return this_day
    match = _SINCE.match(value)
    if match:
        count = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
        if count < 1:
            raise BadSince(f"--since '{text}' covers no day; write 1d or more")
        return this_day - dt.timedelta(days=count - 1)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise BadSince(f"--since '{text}' is not a period: write a number of days (7d), of weeks (2w), today, "
                       "or a date (2026-12-01)") from None
    if day > this_day:
        raise BadSince(f"--since {day} is in the future (today is {this_day} in the ledger's time zone)")
    return day
