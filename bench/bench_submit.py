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

``--timeline`` prints the open loop's p50/p99/max per second, which tells steady queueing (every
second slow) from stalls (a few seconds of 100+ ms: what the API's garbage collections were).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from orchestrator.queue import TASKS_QUEUE  # noqa: E402
from tests.databases import migrate_to_head, throwaway_postgres  # noqa: E402

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BODY = {
    "instruction": "Open Settings and turn on Wi-Fi",
    "device_profile": {"android": 13},
    "metadata": {"ticket": "BENCH-1"},
}
_TICKS = os.sysconf("SC_CLK_TCK")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _empty_redis_db() -> int:
    """A Redis database index holding no keys (highest first, away from db 0 which tests use)."""
    for index in range(15, 0, -1):
        if redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=index).dbsize() == 0:
            return index
    raise RuntimeError("no empty Redis database index (1-15) to run the bench in")


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (from /proc; 0 where unreadable)."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to uvicorn's parent (it stops its workers); the whole group we started if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API was not ready within {timeout_s:g} s")


async def _load(base: str, key: str, total: int, conns: int) -> tuple[list[float], dict[str, int], float]:
    """``total`` submissions over ``conns`` connections: latencies (ms), outcome counts, wall seconds."""
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    counter = itertools.count()
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while next(counter) < total:
                started = time.perf_counter()
                try:
                    response = await client.post(
                        "/api/v1/tasks", json=BODY, headers={"Idempotency-Key": uuid.uuid4().hex}
                    )
                    outcome = str(response.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                latencies.append((time.perf_counter() - started) * 1000)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        wall = time.perf_counter() - started
    return latencies, outcomes, wall


async def _open_loop(
    host: str, port: int, key: str, rate: float, seconds: float, conns: int, timeline: list[tuple[float, float]]
) -> tuple[list[float], dict[str, int], float]:
    """Requests started at ``rate``/s for ``seconds`` over up to ``conns`` kept-alive connections.

    Latencies (ms) run from each request's scheduled start; returns them, outcome counts and the
    wall time from the first scheduled start to the last answer. ``timeline`` gets (scheduled
    start in s from the first, latency ms) per request: where in the run the slow ones were.
    """
    body = json.dumps(BODY).encode()
    head = (
        f"POST /api/v1/tasks HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nIdempotency-Key: "
    ).encode()
    nonce = uuid.uuid4().hex[:12]
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        free.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    async def one(index: int, scheduled: float) -> None:
        reader, writer = await free.get()
        try:
            writer.write(head + f"{nonce}-{index}\r\n\r\n".encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            outcome = status_line.split()[1].decode()
            free.put_nowait((reader, writer))
        except (OSError, asyncio.IncompleteReadError, IndexError) as exc:
            outcome = type(exc).__name__
            writer.close()
            free.put_nowait(await asyncio.open_connection(host, port))
        latencies.append((loop.time() - scheduled) * 1000)
        timeline.append((scheduled - start, latencies[-1]))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    total = int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    wall = loop.time() - start
    while not free.empty():
        free.get_nowait()[1].close()
    return latencies, outcomes, wall


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  n = 0
  accepted = 0
  prefix = string.format("%s-%%d-", id)
end
function request()
  n = n + 1
  wrk.headers["Idempotency-Key"] = prefix .. n
  return wrk.format()
end
function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("accepted") end
  io.write(string.format("ACCEPTED %%d\\n", total))
  for _, q in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("P%%s %%.3f\\n", q, latency:percentile(q) / 1000))
  end
  io.write(string.format("REQUESTS %%d\\nERRORS %%d\\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status
    + summary.errors.timeout))
end
"""


def _wrk(base: str, key: str, conns: int, seconds: int, threads: int) -> dict[str, float]:
    """wrk (C, 2 threads) for ``seconds`` over ``conns`` connections: its own counts and percentiles (ms)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        # A nonce per run: wrk's Lua random is unseeded, and a key reused from an earlier run
        # would be answered as a replay (200), not a new task.
        script.write(_WRK_SCRIPT % (json.dumps(json.dumps(BODY)), key, uuid.uuid4().hex))
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", script.name,
             f"{base}/api/v1/tasks"],
            check=True, capture_output=True, text=True, timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    values = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in {"ACCEPTED", "REQUESTS", "ERRORS", "P50", "P90", "P99", "P99.9"}:
            values[parts[0]] = float(parts[1])
    return values


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
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple] = []
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
            _wait_ready(base, proc)
            asyncio.run(_load(base, key, args.warmup, args.conns))
            cpu_before, client_before = _tree_cpu_s(proc.pid), time.process_time()
            lat, outcomes, wall = asyncio.run(_load(base, key, args.requests, args.conns))
            server_cpu = _tree_cpu_s(proc.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            rows.append(
                (f"{args.conns} connections", args.requests, wall, lat, outcomes, server_cpu, client_cpu)
            )
            cpu_before, client_before = _tree_cpu_s(proc.pid), time.process_time()
            lat, outcomes, wall = asyncio.run(_load(base, key, args.single, 1))
            server_cpu = _tree_cpu_s(proc.pid) - cpu_before
            client_cpu = time.process_time() - client_before
            rows.append(("1 connection", args.single, wall, lat, outcomes, server_cpu, client_cpu))
            if args.rate:
                cpu_before, client_before = _tree_cpu_s(proc.pid), time.process_time()
                # The load generator's own full collections (its heap holds httpx, SQLAlchemy and
                # Alembic) paused its loop for 30-80 ms, which counted as server latency: no
                # collector in the client while it measures.
                gc.collect()
                gc.disable()
                try:
                    lat, outcomes, wall = asyncio.run(
                        _open_loop("127.0.0.1", port, key, args.rate, args.rate_seconds, args.rate_conns, timeline)
                    )
                finally:
                    gc.enable()
                server_cpu = _tree_cpu_s(proc.pid) - cpu_before
                client_cpu = time.process_time() - client_before
                rows.append(
                    (f"open {args.rate:g}/s", len(lat), wall, lat, outcomes, server_cpu, client_cpu)
                )
            if args.wrk:
                cpu_before = _tree_cpu_s(proc.pid)
                wrk_result = _wrk(base, key, args.conns, args.wrk, args.wrk_threads)
                wrk_result["server_cpu"] = _tree_cpu_s(proc.pid) - cpu_before
        finally:
            _stop(proc)
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

    print(
        f"POST /api/v1/tasks, phonefleet api --workers {args.workers} (uvicorn), PostgreSQL + Redis db "
        f"{redis_db}; {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        "client: asyncio + httpx on the SAME cores as the API and PostgreSQL: it competes for CPU, so "
        "req/s is a lower bound"
    )
    print(
        f"{'run':<16} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'errors':>6} {'server CPU/req':>14} {'client CPU/req':>14}"
    )
    for name, total, wall, lat, outcomes, server_cpu, client_cpu in rows:
        if not lat:  # a run asked for 0 requests (--requests 0 / --single 0)
            continue
        errors = sum(n for outcome, n in outcomes.items() if outcome != "202")
        print(
            f"{name:<16} {total:>8} {total / wall:>7.0f} {_percentile(lat, 0.5):>7.1f} "
            f"{_percentile(lat, 0.99):>7.1f} {max(lat):>7.1f} {errors:>6} "
            f"{server_cpu / total * 1000:>11.2f} ms {client_cpu / total * 1000:>11.2f} ms"
        )
        if errors:
            print(f"  outcomes: {outcomes}")
    if args.timeline and timeline:
        print("open loop by second of scheduled start: second requests p50 p99 max (ms)")
        for second in range(int(max(t for t, _ in timeline)) + 1):
            window = [ms for t, ms in timeline if second <= t < second + 1]
            print(
                f"  {second:>3} {len(window):>5} {_percentile(window, 0.5):>7.1f} "
                f"{_percentile(window, 0.99):>7.1f} {max(window, default=float('nan')):>7.1f}"
            )
    if wrk_result:
        n = wrk_result["REQUESTS"]
        print(
            f"{'wrk ' + str(args.conns) + ' conns':<16} {n:>8.0f} {n / args.wrk:>7.0f} {wrk_result['P50']:>7.1f} "
            f"{wrk_result['P99']:>7.1f} {'p99.9 ' + format(wrk_result['P99.9'], '.0f'):>7} "
            f"{n - wrk_result['ACCEPTED']:>6.0f} {wrk_result['server_cpu'] / n * 1000:>11.2f} ms "
            f"{'(wrk, C)':>14}"
        )
    print(
        f"check: {accepted} accepted (incl. {args.warmup} warm-up), {tasks_in_db} task rows, "
        f"{queued} messages on {TASKS_QUEUE!r}; removed {len(created)} Redis keys, dropped the database"
    )
    warnings = [line for line in api_log.splitlines() if "WARNING" in line or "ERROR" in line]
    if warnings:
        print(f"API log: {len(warnings)} warning/error lines, first: {warnings[0][:200]}")
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
