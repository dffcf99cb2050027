"""Schedules and webhook subscriptions through ``orchestrator.client``, ``orchestrator.async_client``
and ``phonefleet schedule``, against the real API (no scheduler runs here: a schedule's runs are
made by ``Scheduler.tick``, called directly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.async_client import AsyncPhoneFleetClient
from orchestrator.cli import main
from orchestrator.client import PhoneFleetAPIError, PhoneFleetClient
from orchestrator.db import UserRole
from orchestrator.db.database import Database
from orchestrator.queue import TaskQueue
from orchestrator.services.scheduler import Scheduler
from orchestrator.settings import ScheduleSettings
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.conftest import Api


def _tick_due(api: Api, schedule: dict, redis_prefix: str) -> None:
    """Make the schedule's due run now, as a scheduler would (the clock past its next due time)."""
    import datetime as dt

    async def tick() -> None:
        queue = TaskQueue.from_settings(api.settings, key_prefix=redis_prefix)
        try:
            async with open_sessions(api.db_url) as sessions:
                due = dt.datetime.fromisoformat(schedule["next_due_at"])
                await Scheduler(Database(sessions), queue, ScheduleSettings()).tick(
                    due + dt.timedelta(seconds=1)
                )
        finally:
            queue.close()

    run(tick())


def test_schedules_and_webhooks_through_the_sync_client(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    with PhoneFleetClient(api.url, admin.key) as pf:
        task = {
            "instruction": "Check the weather",
            "subgoals": ["Open the weather app", "Read today's forecast"],
        }
        made = pf.create_schedule(task, cron="0 9 * * 1-5", timezone="Europe/Paris", overlap="queue")
        assert (made["cron"], made["timezone"], made["overlap"], made["paused"]) == (
            "0 9 * * 1-5", "Europe/Paris", "queue", False,
        )  # fmt: skip
        assert made["task"]["subgoals"] == task["subgoals"]
        every = pf.create_schedule({"instruction": "Ping"}, interval_s=60)
        assert [s["id"] for s in pf.schedules(limit=1)] == [
            every["id"],
            made["id"],
        ]  # newest first, all pages
        assert pf.pause_schedule(made["id"])["paused"] is True
        assert pf.resume_schedule(made["id"])["paused"] is False
        assert pf.get_schedule(made["id"])["id"] == made["id"]
        assert list(pf.schedule_runs(made["id"])) == []
        pf.delete_schedule(every["id"])
        with pytest.raises(PhoneFleetAPIError) as gone:
            pf.get_schedule(every["id"])
        assert (gone.value.status, gone.value.code) == (404, "schedule_not_found")

        sub = pf.create_webhook("https://hooks.example.com/pf", ["task.status"])
        assert sub["secret"] and sub["events"] == ["task.status"]
        assert [s["id"] for s in pf.webhooks()] == [sub["id"]] and "secret" not in pf.get_webhook(sub["id"])
        rotated = pf.rotate_webhook_secret(sub["id"])
        assert rotated["secret"] != sub["secret"] and rotated["secret_rotated_at"]
        pf.delete_webhook(sub["id"])
        assert pf.webhooks() == []


def test_schedules_and_webhooks_through_the_async_client(api: Api, redis_prefix: str) -> None:
    admin = api.caller(role=UserRole.ADMIN)

    async def scenario() -> dict:
        async with AsyncPhoneFleetClient(api.url, admin.key) as pf:
            made = await pf.create_schedule({"instruction": "Ping"}, interval_s=30, catch_up="run_once")
            assert (made["interval_s"], made["catch_up"]) == (30, "run_once")
            assert [s["id"] async for s in pf.schedules()] == [made["id"]]
            assert (await pf.pause_schedule(made["id"]))["paused"] is True
            assert (await pf.resume_schedule(made["id"]))["paused"] is False
            sub = await pf.create_webhook("https://hooks.example.com/pf", ["task.status", "task.step"])
            assert [s["id"] for s in await pf.webhooks()] == [sub["id"]]
            assert (await pf.webhook(sub["id"]))["url"] == "https://hooks.example.com/pf"
            assert (await pf.rotate_webhook_secret(sub["id"]))["secret"] != sub["secret"]
            await pf.delete_webhook(sub["id"])
            assert await pf.webhooks() == []
            return await pf.schedule(made["id"])

    schedule = run(scenario())
    _tick_due(api, schedule, redis_prefix)

    async def runs() -> list:
        async with AsyncPhoneFleetClient(api.url, admin.key) as pf:
            found = [task async for task in pf.schedule_runs(schedule["id"])]
            await pf.delete_schedule(schedule["id"])
            return found

    (made_run,) = run(runs())
    assert (made_run["schedule_id"], made_run["instruction"]) == (schedule["id"], "Ping")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["schedule", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_phonefleet_schedule_cli(
    api: Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_prefix: str,
) -> None:
    caller = api.caller()
    for name in [k for k in os.environ if k.startswith("PHONEFLEET_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PHONEFLEET_DATA_DIR", str(tmp_path / "no-up-here"))  # no phonefleet up's URL or key
    monkeypatch.setenv("PHONEFLEET_URL", api.url)
    monkeypatch.setenv("PHONEFLEET_API_KEY", caller.key)

    code, out, err = _cli(capsys, "create", "Open Settings", "--every", "3600", "--subgoal", "Open Settings",
                          "--subgoal", "Turn on Wi-Fi", "--on-step-failure", "ask", "--max-steps", "7", "--json")  # fmt: skip
    assert code == 0, err
    schedule = json.loads(out)
    assert schedule["interval_s"] == 3600 and schedule["task"]["max_steps"] == 7
    assert (schedule["task"]["subgoals"], schedule["task"]["on_step_failure"]) == (
        ["Open Settings", "Turn on Wi-Fi"],
        "ask",
    )
    sid = schedule["id"]

    code, out, err = _cli(capsys, "list")
    assert code == 0, err
    assert (
        out.startswith(f"{sid}  active  every=3600s  next=")
        and "last=none" in out
        and '"Open Settings"' in out
    )
    code, out, _ = _cli(capsys, "pause", sid)
    assert code == 0 and out.startswith(f"{sid}  paused  ")
    code, out, _ = _cli(capsys, "resume", sid, "--json")
    assert code == 0 and json.loads(out)["paused"] is False
    code, out, _ = _cli(capsys, "show", sid)
    assert code == 0 and out.startswith(f"{sid}  active  ")

    _tick_due(api, schedule, redis_prefix)
    code, out, _ = _cli(capsys, "runs", sid)
    assert code == 0 and len(out.splitlines()) == 1 and "  queued  " in out, out
    code, out, _ = _cli(capsys, "runs", sid, "--json")
    assert [t["subgoals"][1]["goal"] for t in map(json.loads, out.splitlines())] == ["Turn on Wi-Fi"]

    code, out, _ = _cli(capsys, "delete", sid)
    assert code == 0 and out.strip() == f"{sid}  deleted"
    code, _, err = _cli(capsys, "show", sid)
    assert code == 1 and "404 schedule_not_found" in err
    code, _, err = _cli(capsys, "create", "Ping", "--every", "1")
    assert code == 1 and "422" in err and "interval" in err, err  # below the minimum interval
    with pytest.raises(SystemExit) as usage:  # neither --cron nor --every
        _cli(capsys, "create", "Ping")
    assert usage.value.code == 2


def test_phonefleet_schedule_is_a_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "schedule", "--help"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for action in ("create", "list", "show", "pause", "resume", "delete", "runs"):
        assert action in done.stdout
