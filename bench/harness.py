"""What the API benches share (``bench_submit.py``, ``bench_live.py``): percentiles, the CPU time of a
process tree, a free port, and waiting for and stopping the ``phonefleet api`` they start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

__all__ = ["free_port", "percentile", "stop_api", "tree_cpu_s", "wait_ready"]

_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q`` (0..1) quantile; NaN for no samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tree_cpu_s(pid: int) -> float:
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


def stop_api(proc: subprocess.Popen) -> None:
    """SIGINT to uvicorn's parent (it stops its workers); the whole group we started if it lingers
    (the API is started with ``start_new_session=True``, so the group is ours alone)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_ready(base: str, proc: subprocess.Popen, *, path: str = "/readyz", timeout_s: float = 60) -> None:
    """Until ``base + path`` answers 200; raises if the API exits first or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode} before it was ready")
        try:
            if httpx.get(f"{base}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API was not ready within {timeout_s:g} s")
