"""The built-in suite with the scripted solutions on N virtual phones: wall time, tasks per minute, time
in reset, phone utilisation (docs/evals.md, "Benchmark").

Every part a real process (``tests/system/conftest.py``'s ``fleet_starter``): ``phonefleet api``,
``phonefleet pool`` with N warm virtual phones, one ``phonefleet worker`` with N threads, the
reference model (its ``scripted`` model plays each template's solution), on a throwaway PostgreSQL
database. An eval of the suite × ``--repeat`` is created through the API and followed to its end.

- **wall**: from the eval's creation to its last task's end;
- **reset**: the templates' own start states (``initialize``: ``pm clear`` + seeded state) summed
  over tasks, and the pool's factory resets between leases (a device's ``resetting`` time is not
  stored: its share shows as the phones' idle time);
- **utilisation**: the phones' leased time (lease rows, acquired → released) over phones × wall:
  the issue's goal is ≥ 90 %.

    .venv/bin/python bench/bench_eval.py [--phones 6] [--repeat 3] [--templates a,b,…]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from orchestrator.db import Lease, Task  # noqa: E402
from tests.aio import run  # noqa: E402
from tests.conditions import wait_until  # noqa: E402
from tests.databases import open_sessions  # noqa: E402
from tests.processes import start_reference_model  # noqa: E402
from tests.system.conftest import standalone_fleet  # noqa: E402


def _leases(db_url: str, eval_id: str) -> tuple[float, float, float]:
    """(leased seconds summed, first claim → last end seconds, first lease → last release seconds)."""

    async def read() -> tuple[float, float, float]:
        async with open_sessions(db_url) as sessions, sessions() as s:
            tasks = (await s.scalars(select(Task).where(Task.eval_id == uuid.UUID(eval_id)))).all()
            ids = [t.id for t in tasks]
            leases = (await s.scalars(select(Lease).where(Lease.task_id.in_(ids)))).all()
            held = sum((lease.released_at - lease.acquired_at).total_seconds() for lease in leases if lease.released_at)
            first = min(t.created_at for t in tasks)
            last = max(t.finished_at for t in tasks if t.finished_at)
            span = max(lease.released_at for lease in leases if lease.released_at) - min(lease.acquired_at for lease in leases)
            return held, (last - first).total_seconds(), span.total_seconds()

    return run(read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--templates", default=None, help="only these, comma-separated (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="scripted",
                        help='"scripted" (default), or "reference": the reference model in its rule mode (OCR), '
                        "to measure its real rate on the suite")  # fmt: skip
    args = parser.parse_args()
    with standalone_fleet(args.phones, "bench-eval-") as fleet:
        if args.model == "reference":
            model = start_reference_model(fleet.logs, timeout=180)  # rules: OCR and plain rules
            fleet.models.append(model)
            models = [model.model_name]
        else:
            model = fleet.start_model(['finish(message="Done.")'])
            models = ["scripted"]
        fleet.start_worker(model.base_url, concurrency=args.phones)
        body = {"suite": "builtin", "models": models, "repeat": args.repeat, "seed": args.seed,
                "parallel": args.phones, "max_steps": 25}  # fmt: skip
        if args.templates:
            body["templates"] = args.templates.split(",")
        t0 = time.monotonic()
        created = fleet.http.post("/api/v1/evals", json=body)
        assert created.status_code == 201, created.text
        eval_id = created.json()["id"]

        def done() -> dict | None:
            report = fleet.http.get(f"/api/v1/evals/{eval_id}").json()
            print(f"\r{report['done']}/{report['tasks']} done", end="", file=sys.stderr, flush=True)
            return report if report["done"] == report["tasks"] else None

        report = wait_until(done, timeout=3600, interval=2.0, what="the eval's end")
        wall = time.monotonic() - t0
        held, span, lease_span = _leases(fleet.db_url, eval_id)
    print(file=sys.stderr)
    tasks = report["tasks"]
    reset = report["reset"]
    print(f"builtin suite × {args.repeat} with --model {args.model} on {args.phones} virtual phones, 1 worker × "
          f"{args.phones} threads; {os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    print(f"{'tasks':<36} {tasks}")
    print(f"{'success rate':<36} {report['success_rate']:.3f} ({report['successes']}/{report['runs']}), "
          f"infra {report['infra']}")  # fmt: skip
    print(f"{'wall (eval created → last end)':<36} {wall:.1f} s  (first task → last end {span:.1f} s)")
    print(f"{'tasks per minute':<36} {60 * tasks / wall:.1f}")
    print(f"{'reset: initialize, summed':<36} {reset['initialize_s_total']:.1f} s "
          f"({reset['initialize_s_mean']:.2f} s per task; {reset['method']})")  # fmt: skip
    print(f"{'phones leased, summed':<36} {held:.1f} s")
    print(f"{'phone utilisation (leased / N×wall)':<36} {100 * held / (args.phones * wall):.1f} %  "
          f"(over the leases' own span: {100 * held / (args.phones * lease_span):.1f} %)")  # fmt: skip
    failed = [(t["template"], t["status"], t["reason"], t["score"]) for t in report["task_list"] if not t.get("success")]
    if failed:
        print("not successful (template, status, reason, score):")
        for row in failed:
            print("  ", *row)
    for t in report["templates"]:
        print(f"  {t['template']:<26} {t['category']:<13} {t['successes']}/{t['runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
