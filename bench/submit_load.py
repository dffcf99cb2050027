"""The load generators of ``bench_submit.py``: closed loops over httpx, an open loop on raw asyncio
streams, and wrk (C). Each submission carries its own ``Idempotency-Key``, so each creates a task."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import tempfile
import time
import uuid

import httpx

__all__ = ["BODY", "closed_loop", "open_loop", "wrk"]

BODY = {
    "instruction": "Open Settings and turn on Wi-Fi",
    "device_profile": {"android": 13},
    "metadata": {"ticket": "BENCH-1"},
}


async def closed_loop(base: str, key: str, total: int, conns: int) -> tuple[list[float], dict[str, int], float]:
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


async def open_loop(
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


def wrk(base: str, key: str, conns: int, seconds: int, threads: int) -> dict[str, float]:
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
