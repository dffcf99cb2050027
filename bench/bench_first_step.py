"""Submission to first step with a warm pool: how long a task waits before the agent has acted once.

Runs the control plane as the separate processes it runs as in production (the system tests'
``fleet_starter``): ``phonefleet api`` over HTTP, ``phonefleet pool`` with warm virtual phones,
``phonefleet worker``, and the reference model in scripted mode (Home, then finish), on a throwaway
PostgreSQL database and an empty Redis database index. Everything is stopped by pid afterwards.

Tasks are submitted one at a time, each after the previous one ended and the pool is warm again
(every phone idle), so nothing queues behind anything. For each task the database gives the
times (every process stamps UTC on this one machine):

- queue: ``tasks.created_at`` → ``tasks.claimed_at`` (the broker hands the message to a worker);
- lease: ``claimed_at`` → ``leases.acquired_at`` (the worker leases an idle phone);
- first step: ``created_at`` → the first ``steps`` row committed (connect, screenshot, model,
  action, settle, screenshot saved, row written), and the same without the model's time
  (``steps.timings.model_s``): the goal is ≤ 1 s p50 excluding model time.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379, Debian's adb):

    .venv/bin/python bench/bench_first_step.py [--tasks 20] [--phones 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from orchestrator.db import Lease, Step, Task  # noqa: E402
from tests.aio import run  # noqa: E402
from tests.conditions import wait_until  # noqa: E402
from tests.databases import open_sessions  # noqa: E402
from tests.system.conftest import FINAL, Fleet, standalone_fleet  # noqa: E402


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timeline(db_url: str, task_id: str) -> dict[str, float]:
    """Seconds from submission to each milestone of ``task_id``, and its first step's model time."""

    async def read() -> dict[str, float]:
        async with open_sessions(db_url) as sessions, sessions() as s:
            tid = uuid.UUID(task_id)
            task = await s.get(Task, tid)
            lease = await s.scalar(select(Lease).where(Lease.task_id == tid).order_by(Lease.acquired_at))
            step = await s.scalar(select(Step).where(Step.task_id == tid).order_by(Step.index))
            assert task is not None and task.claimed_at and lease and step, f"task {task_id} has no first step"
            since = task.created_at
            return {
                "queue": (task.claimed_at - since).total_seconds(),
                "lease": (lease.acquired_at - task.claimed_at).total_seconds(),
                "first_step": (step.created_at - since).total_seconds(),
                "model": float(step.timings.get("model_s", 0.0)),
            }

    return run(read())


def _one_task(fleet: Fleet, phones: int) -> dict[str, float]:
    wait_until(lambda: len(fleet.devices("idle")) == phones, timeout=60, interval=0.05, what="a warm pool")
    task = fleet.submit("Go to the home screen", max_steps=3, timeout_s=120)
    done = fleet.wait_status(task["id"], FINAL, timeout=120)
    assert done["status"] == "succeeded", done
    return _timeline(fleet.db_url, task["id"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20, help="measured tasks, one at a time")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured tasks first")
    parser.add_argument("--phones", type=int, default=2, help="warm phones in the pool")
    args = parser.parse_args()
    with standalone_fleet(args.phones, "bench-first-step-") as fleet:
        model = fleet.start_model(['do(action="Home")', 'finish(message="home")'])
        fleet.start_worker(model.base_url, concurrency=1)
        for _ in range(args.warmup):
            _one_task(fleet, args.phones)
        rows = [_one_task(fleet, args.phones) for _ in range(args.tasks)]

    print(
        f"submission → first step, warm pool of {args.phones} virtual phones, 1 worker, scripted model; "
        f"{args.tasks} tasks one at a time; {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"{'interval':<34} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    series = {
        "queue (created → claimed)": [r["queue"] for r in rows],
        "lease (claimed → leased)": [r["lease"] for r in rows],
        "first step (created → step row)": [r["first_step"] for r in rows],
        "  of which model": [r["model"] for r in rows],
        "first step excluding model": [r["first_step"] - r["model"] for r in rows],
    }
    for name, values in series.items():
        print(
            f"{name:<34} {_percentile(values, 0.5) * 1000:>8.0f} {_percentile(values, 0.9) * 1000:>8.0f} "
            f"{max(values) * 1000:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
