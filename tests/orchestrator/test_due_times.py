"""Due times: cron in a time zone across daylight-saving changes, intervals, missed due times."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.services.due_times import Cadence, check_cron, check_timezone

UTC = dt.UTC


def _at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def _fires(cadence: Cadence, start: dt.datetime, count: int) -> list[dt.datetime]:
    out, at = [], start
    for _ in range(count):
        at = cadence.next_after(at)
        out.append(at)
    return out


def test_cron_follows_the_schedules_time_zone_across_spring_forward() -> None:
    """Paris moves from UTC+1 to UTC+2 on 2026-03-29: 09:00 in Paris is 08:00 UTC, then 07:00 UTC."""
    weekday_nine = Cadence(cron="0 9 * * *", timezone="Europe/Paris")
    fires = _fires(weekday_nine, _at(2026, 3, 27, 12), 3)
    assert fires == [_at(2026, 3, 28, 8), _at(2026, 3, 29, 7), _at(2026, 3, 30, 7)]
    assert all(f.tzinfo is UTC for f in fires)


def test_cron_follows_the_schedules_time_zone_across_fall_back() -> None:
    """New York moves from UTC-4 to UTC-5 on 2026-11-01: 09:00 there is 13:00 UTC, then 14:00 UTC."""
    nine = Cadence(cron="0 9 * * *", timezone="America/New_York")
    assert _fires(nine, _at(2026, 10, 31, 0), 2) == [_at(2026, 10, 31, 13), _at(2026, 11, 1, 14)]


def test_a_utc_cron_does_not_move_and_weekdays_are_the_zones() -> None:
    # 2026-12-04 is a Friday; "1-5" is Monday to Friday, so the next fire after it is Monday's.
    weekdays = Cadence(cron="0 9 * * 1-5", timezone="UTC")
    assert _fires(weekdays, _at(2026, 12, 4, 10), 2) == [_at(2026, 12, 7, 9), _at(2026, 12, 8, 9)]


def test_interval_steps_and_missed_due_times() -> None:
    every20 = Cadence(interval_s=20)
    start = _at(2026, 1, 1, 0, 0, 0)
    assert every20.next_after(start) == _at(2026, 1, 1, 0, 0, 20)
    # Down for a minute: due at 00:00:00, now 00:01:05 → the latest passed is 00:01:00, next 00:01:20.
    latest, following = every20.latest_until(start, _at(2026, 1, 1, 0, 1, 5))
    assert (latest, following) == (_at(2026, 1, 1, 0, 1, 0), _at(2026, 1, 1, 0, 1, 20))
    # On time: nothing else passed.
    assert every20.latest_until(start, start) == (start, _at(2026, 1, 1, 0, 0, 20))


def test_cron_missed_due_times_step_in_the_zone() -> None:
    hourly = Cadence(cron="0 * * * *", timezone="Asia/Kolkata")  # UTC+5:30: fires at hh:30 UTC
    latest, following = hourly.latest_until(_at(2026, 1, 1, 0, 30), _at(2026, 1, 1, 3, 45))
    assert (latest, following) == (_at(2026, 1, 1, 3, 30), _at(2026, 1, 1, 4, 30))


def test_shortest_gap() -> None:
    assert Cadence(interval_s=3600).shortest_gap_s(_at(2026, 1, 1)) == 3600
    assert Cadence(cron="*/5 * * * *").shortest_gap_s(_at(2026, 1, 1)) == 300
    assert Cadence(cron="0 9,10 * * *").shortest_gap_s(_at(2026, 1, 1)) == 3600


@pytest.mark.parametrize(
    ("expression", "why"),
    [("61 * * * *", "not a valid cron"), ("* * * *", "five fields"), ("0 9 * * * 5", "five fields"), ("", "five")],
)
def test_bad_cron_expressions_are_refused(expression: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_cron(expression)


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/paris ", "../zoneinfo/UTC", ""])
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        check_timezone(name)


def test_known_time_zones_pass() -> None:
    assert check_timezone("Europe/Paris") == "Europe/Paris" and check_timezone("UTC") == "UTC"


def test_a_cadence_has_exactly_one_rule() -> None:
    with pytest.raises(ValueError, match="either cron or interval_s"):
        Cadence(cron="* * * * *", interval_s=60)
    with pytest.raises(ValueError, match="either cron or interval_s"):
        Cadence()
