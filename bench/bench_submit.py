"""Task submission throughput: ``POST /api/v1/tasks`` against a real ``phonefleet api --workers 2``.

Starts everything it needs and removes it afterwards:

- a throwaway PostgreSQL database, migrated to head (dropped at the end);
- a Redis database index with no keys in it (the settings have no Celery key prefix, so the bench
  takes an empty index rather than sharing db 0); the keys the run created there are deleted;
- ``python -m orchestrator.cli api --workers N`` as a subprocess, environment pointing at both,
  the per-tenant rate limit raised so it never throttles (stopped by pid);
- an API key from ``python -m orchestrator.cli admin create-key``.

Load comes from an asyncio + httpx client with a fixed number of connections, each request with its
own ``Idempotency-Key`` (so every one creates a task: a row, an outbox event, a Celery message):

- warm-up (not measured): opens connections, fills the key cache and the database pools;
- concurrent: ``--requests`` submissions over ``--conns`` connections: requests/s, p50/p99, errors;
- one connection: ``--single`` submissions one after another: the latency of an unloaded request;
- open loop (``--rate R``): submissions *started* at a fixed R per second for ``--rate-seconds``,
  whether or not earlier ones have been answered, by a minimal HTTP/1.1 client on raw asyncio
  streams (httpx's ~2.5 ms of CPU per request would take a core from the server at 300/s). Latency
  runs from each request's scheduled start, so waiting for a free connection counts (no coordinated
  omission). wrk and the connection runs are closed loops: they saturate the server, so their p99 is
  queueing; the open loop shows the latency at a given load.

The client runs on the same cores as the API and PostgreSQL, so it takes CPU from the server: the
throughput is a lower bound of what the server does with the machine to itself. The run checks that
the database holds one task per 202 and the queue one message per task. Run from the repository
root (PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379):

    .venv/bin/python bench/bench_submit.py [--requests 3000] [--conns 32] [--single 500] [--workers 2]
        [--wrk SECONDS] [--rate 300 --rate-seconds 15 [--timeline]] [--api-log PATH]

The load generators are in ``bench/submit_load.py``, the report in ``bench/submit_report.py``.
``--timeline`` prints the open loop's p50/p99/max per second, which tells steady queueing (every
second slow) from stalls (a few seconds of 100+ ms: what the API's garbage collections were).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import free_port, stop_api, tree_cpu_s, wait_ready  # noqa: E402
from bench.submit_load import closed_loop, open_loop, wrk  # noqa: E402
from bench.submit_report import Run, report  # noqa: E402
from orchestrator.queue import TASKS_QUEUE  # noqa: E402
from tests.databases import migrate_to_head, throwaway_postgres  # noqa: E402

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _empty_redis_db() -> int:
    """A Redis database index holding no keys (highest first, away from db 0 which tests use)."""
    for index in range(15, 0, -1):
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=index).dbsize() == 0:
            return index
    raise RuntimeError("no empty Redis database index (1-15) to run the bench in")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="concurrent run: submissions")
    parser.add_argument("--conns", type=int, default=32, help="concurrent run: connections")
    parser.add_argument("--single", type=int, default=500, help="one-connection run: submissions")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured submissions first")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--wrk", type=int, default=0, metavar="SECONDS",
        help="also load with wrk (C; needs the wrk binary) for SECONDS at --conns connections",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--rate", type=float, default=0, metavar="PER_S",
        help="also run an open loop: submissions started at PER_S a second (see --rate-seconds)",
    )
    parser.add_argument("--rate-seconds", type=float, default=15, help="open loop: seconds")
    parser.add_argument("--rate-conns", type=int, default=64, help="open loop: most connections")
    parser.add_argument(
        "--timeline", action="store_true",
        help="open loop: also print each second's p50/p99/max, to tell steady queueing from stalls",
    )  # fmt: skip
    parser.add_argument("--api-log", metavar="PATH", help="keep the API's output (WARNING and up) here")
    args = parser.parse_args()
    wrk_result: dict[str, float] = {}
    timeline: list[tuple[float, float]] = []

    redis_db = _empty_redis_db()
    broker = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db)
    keys_before = set(broker.keys("*"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows: list[Run] = []
    with throwaway_postgres("pfbench") as db, tempfile.TemporaryDirectory(prefix="bench-submit-") as tmp:
        migrate_to_head(db.url)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
            "PHONEFLEET_DATABASE_URL": db.url,
            "PHONEFLEET_REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
            "PHONEFLEET_DATA_DIR": tmp,
            "PHONEFLEET_API__PORT": str(port),
            "PHONEFLEET_AUTH__RATE_LIMIT_PER_S": "1000000",
            "PHONEFLEET_AUTH__RATE_LIMIT_BURST": "1000000",
        }
        cli = [sys.executable, "-m", "orchestrator.cli"]
        key = subprocess.run(
            [*cli, "admin", "create-key", "--tenant", "bench", "--admin"],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        log = open(Path(tmp) / "api.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [*cli, "--log-level", "WARNING", "api", "--workers", str(args.workers)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(base, proc)
            asyncio.run(closed_loop(base, key, args.warmup, args.conns))
            cpu_before, client_before = tree_cpu_s(proc.pid), time.process_time()
            lat, outcomes, wall = asyncio.run(closed_loop(base, key, args.requests, args.conns))
            server_cpu = tree_cpu_s(proc.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            rows.append(
                (f"{args.conns} connections", args.requests, wall, lat, outcomes, server_cpu, client_cpu)
            )
            cpu_before, client_before = tree_cpu_s(proc.pid), time.process_time()
            lat, outcomes, wall = asyncio.run(closed_loop(base, key, args.single, 1))
            server_cpu = tree_cpu_s(proc.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            rows.append(("1 connection", args.single, wall, lat, outcomes, server_cpu, client_cpu))
            if args.rate:
                cpu_before, client_before = tree_cpu_s(proc.pid), time.process_time()
                # The load generator's own full collections (its heap holds httpx, SQLAlchemy and
                # Alembic) paused its loop for 30-80 ms, which counted as server latency: no
                # collector in the client while it measures.
                gc.collect()
                gc.disable()
                try:
                    lat, outcomes, wall = asyncio.run(
                        open_loop("127.0.0.1", port, key, args.rate, args.rate_seconds, args.rate_conns, timeline)
                    )
                finally:
                    gc.enable()
                server_cpu = tree_cpu_s(proc.pid) - cpu_before
                client_cpu = time.process_time() - client_before
                rows.append(
                    (f"open {args.rate:g}/s", len(lat), wall, lat, outcomes, server_cpu, client_cpu)
                )
            if args.wrk:
                cpu_before = tree_cpu_s(proc.pid)
                wrk_result = wrk(base, key, args.conns, args.wrk, args.wrk_threads)
                wrk_result["server_cpu"] = tree_cpu_s(proc.pid) - cpu_before
        finally:
            stop_api(proc)
            log.close()
        accepted = sum(r[4].get("202", 0) for r in rows) + args.warmup + int(wrk_result.get("ACCEPTED", 0))
        tasks_in_db = _count_tasks(db.dsn)
        queued = broker.llen(TASKS_QUEUE)
        api_log = (Path(tmp) / "api.log").read_text()
        if args.api_log:
            Path(args.api_log).write_text(api_log)
    created = set(broker.keys("*")) - keys_before
    if created:
        broker.delete(*created)

    report(
        args, redis_db=redis_db, rows=rows, timeline=timeline, wrk_result=wrk_result, accepted=accepted,
        tasks_in_db=tasks_in_db, queued=queued, queue=TASKS_QUEUE, removed_keys=len(created), api_log=api_log,
    )
    # wrk stops on a clock: requests still in flight then were committed but their 202 never counted.
    in_flight = args.conns if wrk_result else 0
    return 0 if accepted <= tasks_in_db == queued <= accepted + in_flight else 1


def _count_tasks(dsn: str) -> int:
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval("SELECT count(*) FROM tasks")
        finally:
            await conn.close()

    return asyncio.run(count())


if __name__ == "__main__":
    sys.exit(main())
