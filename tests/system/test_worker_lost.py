"""A SIGKILLed worker's task is re-claimed within 20 s, with the timings a deployment gets by default.

Every part is a real process (``phonefleet api``, ``phonefleet pool`` with its reaper and sweeper,
two ``phonefleet worker``s, PostgreSQL, Redis) and no setting is shortened: the lease TTL stays
60 s, and only worker liveness (``pool.worker_heartbeat_s`` 3 s, ``pool.worker_lost_s`` 15 s, the
sweeper's lost-worker pass every 3 s) decides how soon the task moves on. The model holds worker
A's second request open (``Hang``), so A is surely mid-run when it is killed; worker B is already
running and idle. Nobody helps: no test code reaps, resets or re-enqueues anything.
"""

from __future__ import annotations

import time
from typing import Any

from tests.conditions import wait_until
from tests.system.conftest import Fleet
from tests.worker.agent.model_servers import Hang, ModelServer, Reply, serve

LAUNCH = 'do(action="Launch", app="Settings")'
# The bound the "faults" issue sets, from the kill to the task re-claimed by another worker.
RECLAIM_BOUND_S = 20.0


def test_a_killed_workers_task_is_reclaimed_within_20_s_and_run_once_at_a_time(start_fleet) -> None:
    fleet: Fleet = start_fleet(1)
    # A: Launch, then a request held open until A dies. B (on a reset phone): Launch, finish.
    script = [Reply(LAUNCH), Hang(limit_s=300), Reply(LAUNCH), Reply('finish(message="ok")')]
    with serve(ModelServer(*script, default=Reply('finish(message="ok")'))) as model:
        worker_a = fleet.start_worker(model.base_url)
        task_id = fleet.submit("Open Settings", max_steps=10, timeout_s=300)["id"]
        wait_until(lambda: len(model.requests) == 2, timeout=60, interval=0.05, what="A's second model call")
        assert fleet.task(task_id)["status"] == "running" and len(fleet.steps(task_id)) == 1
        worker_b = fleet.start_worker(model.base_url)
        assert fleet.task(task_id)["attempts"] == 1  # a live worker's task is nobody else's

        worker_a.kill()
        killed = time.monotonic()

        def reclaimed() -> dict[str, Any] | None:
            task = fleet.task(task_id)
            return task if task["attempts"] == 2 else None

        # Waited on past the bound, so a slow re-claim is measured and reported, not just timed out.
        task = wait_until(reclaimed, timeout=120, interval=0.05, what="the task re-claimed")
        reclaim_s = time.monotonic() - killed
        assert task["status"] in ("leasing", "running"), task
        assert reclaim_s < RECLAIM_BOUND_S, f"re-claimed {reclaim_s:.1f} s after the kill"

        done = fleet.wait_status(task_id, ("succeeded",), timeout=120)
        assert done["attempts"] == 2, done
        assert model.max_in_flight == 1 and model.disconnects == 1  # A's held call died with A

    claims = [e.payload for e in fleet.events(task_id) if e.type == "task.status" and e.payload["to"] == "leasing"]
    assert [c.get("reason") for c in claims] == [None, "reclaimed"], claims
    assert claims[1]["worker_id"].split("/")[0].endswith(f":{worker_b.proc.pid}"), claims
    transitions = [(e.payload["from"], e.payload["to"]) for e in fleet.events(task_id) if e.type == "task.status"]
    assert transitions == [
        ("queued", "leasing"), ("leasing", "running"),
        ("running", "leasing"), ("leasing", "running"), ("running", "succeeded"),
    ], transitions  # fmt: skip

    # A's lease was ended as lost (not left to expire at 60 s) before B's began, on the same phone:
    # the two runs never held it at once.
    first, second = fleet.leases()
    assert first.holder == claims[0]["worker_id"] and second.holder == claims[1]["worker_id"]
    assert first.release_reason == "worker_lost" and second.release_reason == "released", (first, second)
    assert first.device_id == second.device_id and first.released_at <= second.acquired_at
    assert first.released_at < first.expires_at, first  # ended, not reaped at its expiry

    # The phone was reset before B got it: B's first screen is the launcher, though A left Settings.
    steps = fleet.steps(task_id)
    assert [s["action"]["name"] for s in steps] == ["Launch", "Launch", "finish"], steps
    assert steps[1]["current_app"] == "Home screen" and steps[2]["current_app"] == "Settings", steps
    wait_until(lambda: fleet.devices("idle"), timeout=30, what="the phone idle again")
    print(f"\nworker killed → task re-claimed by another worker in {reclaim_s:.1f} s (bound {RECLAIM_BOUND_S:g} s)")

