"""When a schedule is due: a cron expression in a time zone (croniter, zoneinfo), or a fixed interval.

A cron expression is read in the schedule's time zone, so "0 9 * * 1-5" in Europe/Paris is 09:00
in Paris on both sides of a daylight-saving change (08:00 UTC in winter, 07:00 UTC in summer). A
wall-clock time a spring-forward skips (02:30 on the day clocks go from 02:00 to 03:00) runs at the
first valid time after it, as croniter gives it. Every time handed out is aware UTC.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

__all__ = ["Cadence", "check_cron", "check_timezone"]

# The IANA names (a walk of the zone files: read once per process).
_ZONES = functools.cache(available_timezones)

# How many fires of a cron expression are looked at to find its shortest gap (the minimum interval
# limit). A day of per-minute fires is 1440; the gap of interest shows within the first few hundred.
_GAP_SAMPLES = 400


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone ("Europe/Paris", "UTC"); ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        hint = "e.g. Europe/Paris, America/New_York or UTC"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc
    if name not in _ZONES() and name != "UTC":
        # ZoneInfo also opens files by relative path ("../zoneinfo/UTC"); only IANA names are taken.
        raise ValueError(f"unknown time zone {name!r}")
    return name


def check_cron(expression: str) -> str:
    """``expression`` if it is a five-field cron expression croniter reads; ValueError otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron expression has five fields (minute hour day-of-month month day-of-week), "
            f"{expression!r} has {len(fields)}"
        )
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a valid cron expression")
    return expression


@dataclass(frozen=True)
class Cadence:
    """A schedule's rule: ``cron`` in ``timezone``, or every ``interval_s`` seconds."""

    cron: str | None = None
    timezone: str = "UTC"
    interval_s: int | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give either cron or interval_s, not both and not neither")

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first due time strictly after ``after`` (aware), as aware UTC."""
        if self.interval_s is not None:
            return (after + dt.timedelta(seconds=self.interval_s)).astimezone(dt.UTC)
        local = after.astimezone(ZoneInfo(self.timezone))
        try:
            fire = croniter(self.cron, local).get_next(dt.datetime)
        except (CroniterBadCronError, CroniterBadDateError) as exc:  # a date that never comes: "0 0 31 2 *"
            raise ValueError(f"{self.cron!r} is never due: {exc}") from exc
        return fire.astimezone(dt.UTC)

    def shortest_gap_s(self, start: dt.datetime) -> float:
        """The shortest time between two due times (from ``start`` on): ``interval_s``, or the
        smallest gap among a cron expression's next fires."""
        if self.interval_s is not None:
            return float(self.interval_s)
        gaps, previous = [], self.next_after(start)
        for _ in range(_GAP_SAMPLES):
            following = self.next_after(previous)
            gaps.append((following - previous).total_seconds())
            previous = following
        return min(gaps)

    def latest_until(self, due: dt.datetime, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """From a due time ``due`` at or before ``now``: (the latest due time at or before ``now``,
        the first one after it). How a scheduler steps over the due times it missed."""
        latest, following = due, self.next_after(due)
        if self.interval_s is not None and following <= now:
            # Straight to the last period instead of stepping through every one missed.
            skipped = int((now - due).total_seconds() // self.interval_s)
            latest = due + dt.timedelta(seconds=skipped * self.interval_s)
            following = self.next_after(latest)
        while following <= now:
            latest, following = following, self.next_after(following)
        return latest, following
