"""Recovery time per fault: runs the chaos suite (tests/chaos/) and prints its report as a table.

Each scenario starts a fleet of real processes, injects one fault in the middle of its tasks
(a worker or the pool SIGKILLed, Redis restarted or flushed, the model server killed for 30 s or
hung, a phone or the adb server killed, PostgreSQL restarted) and records, from the database's
timestamps (tests/chaos/scenario.py):

- ``outage_s``: how long the fault lasted (0 for a kill);
- ``moving_again_s``: from the fault's end until every task not ended by then has moved again
  (a step recorded, or its end);
- ``first_success_s``: from the fault until the first task succeeded after it;
- ``all_ended_s``: from the fault until the last task ended;
- ``retried``: tasks that needed more than one attempt.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, redis-server, Debian's adb, and for
the PostgreSQL scenario initdb/pg_ctl and a ``postgres`` user):

    .venv/bin/python bench/bench_faults.py [-k redis] [--report chaos-report.json]

It is the same run as ``pytest -m chaos``; docs/faults.md quotes its table. The numbers are the
scenarios' own (four tasks of about 7 s on two phones, two workers, short worker liveness), not
a deployment's; see docs/faults.md for which bounds are product defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.chaos.report import REPORT_ENV, table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", default=None, help="only the scenarios pytest's -k selects")
    parser.add_argument("--report", default=None, help="where to keep the JSON report (default: a temp file)")
    args = parser.parse_args()
    target = Path(args.report or tempfile.mkstemp(prefix="chaos-report-", suffix=".json")[1]).resolve()
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "chaos", "tests/chaos"]
    if args.k:
        argv += ["-k", args.k]
    done = subprocess.run(argv, cwd=REPO, env={**os.environ, REPORT_ENV: str(target)}, check=False)
    records = json.loads(target.read_text()) if target.exists() and target.stat().st_size else []
    print(f"\n{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; report {target}")
    for line in table(records):
        print(line)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
