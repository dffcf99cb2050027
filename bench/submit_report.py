"""The report of ``bench_submit.py``: one line per run (req/s, p50/p99/max, errors, CPU per request on
each side), the open loop by second (``--timeline``), wrk's line, and the checks against the database."""

from __future__ import annotations

import argparse
import os
import platform

from bench.harness import percentile

__all__ = ["Run", "report"]

# (name, requests, wall s, latencies ms, outcome counts, server CPU s, client CPU s)
Run = tuple[str, int, float, list[float], dict[str, int], float, float]


def report(
    args: argparse.Namespace,
    *,
    redis_db: int,
    rows: list[Run],
    timeline: list[tuple[float, float]],
    wrk_result: dict[str, float],
    accepted: int,
    tasks_in_db: int,
    queued: int,
    queue: str,
    removed_keys: int,
    api_log: str,
) -> None:
    """Print the runs and the checks (the caller decides the exit status)."""
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
            f"{name:<16} {total:>8} {total / wall:>7.0f} {percentile(lat, 0.5):>7.1f} "
            f"{percentile(lat, 0.99):>7.1f} {max(lat):>7.1f} {errors:>6} "
            f"{server_cpu / total * 1000:>11.2f} ms {client_cpu / total * 1000:>11.2f} ms"
        )
        if errors:
            print(f"  outcomes: {outcomes}")
    if args.timeline and timeline:
        print("open loop by second of scheduled start: second requests p50 p99 max (ms)")
        for second in range(int(max(t for t, _ in timeline)) + 1):
            window = [ms for t, ms in timeline if second <= t < second + 1]
            print(
                f"  {second:>3} {len(window):>5} {percentile(window, 0.5):>7.1f} "
                f"{percentile(window, 0.99):>7.1f} {max(window, default=float('nan')):>7.1f}"
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
        f"{queued} messages on {queue!r}; removed {removed_keys} Redis keys, dropped the database"
    )
    warnings = [line for line in api_log.splitlines() if "WARNING" in line or "ERROR" in line]
    if warnings:
        print(f"API log: {len(warnings)} warning/error lines, first: {warnings[0][:200]}")
