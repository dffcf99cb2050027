"""A worker SIGKILLed in the middle of a task, with every part a real process: ``phonefleet api``,
``phonefleet pool`` (one virtual phone, its reaper and the task sweeper), ``phonefleet worker``, the
scripted reference model, PostgreSQL and Redis. Nobody helps: no test code reaps, resets or
re-enqueues anything.

A short lease TTL (3 s, heartbeat 1 s; worker liveness follows it: lost after 3 s) and a sweep
every second keep the recovery quick. The dead worker's lease ends — reaped at its expiry, or
ended by the sweeper that found the worker lost, whichever comes first — the phone is reset and
idle again, and the sweeper re-enqueues the task: a second worker runs it to the end, or, when that worker dies too
on the last attempt (``tasks.max_infra_attempts``, 2 here), the sweeper fails it ``worker_lost``. The task never stays ``running``.
"""

from __future__ import annotations

import time

from tests.conditions import wait_until
from tests.system.conftest import Fleet

SHORT_LEASES = {"PHONEFLEET_POOL__LEASE_TTL_S": "3", "PHONEFLEET_POOL__HEARTBEAT_S": "1"}
POOL_ARGS = ["--sweep-interval", "1", "--reap-interval", "1"]
# Both end a dead run's lease at about the same moment here: the reaper or the sweeper.
ENDED_DEAD = ("expired", "worker_lost")
# Launch Settings, then a Wait long enough to be killed in, then done.
SCRIPT = [
    'do(action="Launch", app="Settings")',
    'do(action="Wait", duration="5 seconds")',
    'finish(message="ok")',
]


def start_killable(fleet: Fleet) -> tuple[str, str]:
    """A worker and a task it is in the middle of (its first step recorded); the model's URL and the task id."""
    model = fleet.start_model(SCRIPT)
    worker = fleet.start_worker(model.base_url)
    task_id = fleet.submit("Open Settings and wait", max_steps=10, timeout_s=120)["id"]
    wait_until(lambda: fleet.steps(task_id), timeout=60, interval=0.05, what="the first step recorded")
    assert fleet.task(task_id)["status"] == "running"
    worker.kill()
    return model.base_url, task_id


def transitions(fleet: Fleet, task_id: str) -> list[tuple[str, str]]:
    return [(e.payload["from"], e.payload["to"]) for e in fleet.events(task_id) if e.type == "task.status"]


def test_a_killed_workers_task_is_run_again_by_another_worker(start_fleet) -> None:
    fleet: Fleet = start_fleet(1, pool_args=POOL_ARGS, **SHORT_LEASES)
    model_url, task_id = start_killable(fleet)
    killed = time.monotonic()
    fleet.start_worker(model_url)

    # The pool ends the lease (reaped or found lost); the dead worker released nothing.
    first = wait_until(
        lambda: next((lease for lease in fleet.leases() if lease.released_at is not None), None),
        timeout=30, what="the dead worker's lease ended",
    )  # fmt: skip
    assert first.release_reason in ENDED_DEAD, first
    done = fleet.wait_status(task_id, ("succeeded",), timeout=60)
    recovered_s = time.monotonic() - killed
    assert done["attempts"] == 2, done

    leases = [lease for lease in fleet.leases() if str(lease.task_id) == task_id]
    assert leases[0].release_reason in ENDED_DEAD and leases[1].release_reason == "released", leases
    assert leases[0].device_id == leases[1].device_id and leases[0].released_at <= leases[1].acquired_at
    events = fleet.events(task_id)
    requeued = [e.payload for e in events if e.type == "task.requeued"]
    assert requeued and requeued[0]["from"] == "running", requeued  # the sweeper's doing
    assert transitions(fleet, task_id) == [
        ("queued", "leasing"), ("leasing", "running"),
        ("running", "leasing"), ("leasing", "running"), ("running", "succeeded"),
    ]  # fmt: skip

    # Both attempts' steps are kept, numbered on; the second began on a reset phone: the launcher
    # in front, although the first left Settings there.
    steps = fleet.steps(task_id)
    assert [s["index"] for s in steps] == [0, 1, 2, 3], steps
    assert [s["action"]["name"] for s in steps] == ["Launch", "Launch", "Wait", "finish"], steps
    assert steps[1]["current_app"] == "Home screen" and steps[2]["current_app"] == "Settings", steps
    assert all(fleet.http.get(s["screenshot_url"]).status_code == 200 for s in steps)
    wait_until(lambda: fleet.devices("idle"), timeout=30, what="the phone idle again")
    print(f"\nkilled → succeeded on the second worker in {recovered_s:.1f} s (lease TTL 3 s, sweep 1 s)")


def test_a_task_whose_workers_die_twice_is_failed_worker_lost(start_fleet) -> None:
    # Two attempts at most (tasks.max_infra_attempts; default 3): the second death is the last.
    fleet: Fleet = start_fleet(
        1, pool_args=POOL_ARGS, PHONEFLEET_TASKS__MAX_INFRA_ATTEMPTS="2", **SHORT_LEASES
    )
    model_url, task_id = start_killable(fleet)
    second = fleet.start_worker(model_url)
    # The second worker re-claims the task and gets into it, then dies too.
    wait_until(
        lambda: fleet.task(task_id)["attempts"] == 2 and len(fleet.steps(task_id)) >= 2,
        timeout=60, interval=0.05, what="the second attempt's first step",
    )  # fmt: skip
    second.kill()
    killed = time.monotonic()

    done = fleet.wait_status(task_id, ("failed",), timeout=60)
    failed_s = time.monotonic() - killed
    assert done["reason"] == "worker_lost" and done["attempts"] == 2 and done["finished_at"], done
    last = [e.payload for e in fleet.events(task_id) if e.type == "task.status"][-1]
    assert last["to"] == "failed" and last["by"] == "sweeper", last
    # Both leases ended by the pool; the phone is reset and idle again.
    wait_until(
        lambda: [lease.release_reason in ENDED_DEAD for lease in fleet.leases()] == [True, True],
        timeout=30, what="both leases ended",
    )  # fmt: skip
    wait_until(lambda: fleet.devices("idle"), timeout=30, what="the phone idle again")
    print(f"\nsecond worker killed → failed worker_lost in {failed_s:.1f} s")
