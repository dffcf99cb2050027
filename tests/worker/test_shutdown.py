"""``worker.shutdown`` in a process of its own: runs are cancelled after the grace, and a process
still held at the deadline (a cleanup that ignores the cancel) exits anyway, with its log line.

The process is a small script, not ``phonefleet worker``: a run whose cleanup blocks a thread
after its cancel cannot be made with a real run on demand (tests/worker/runtask/test_broker_restart.py
stops a real worker, whose cleanup ends within the grace). Celery's ``worker_shutting_down``
signal is sent as Celery's SIGTERM handler sends it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from tests.processes import REPO

SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys, threading, time
    from celery.signals import worker_shutting_down
    from worker.shutdown import bound_shutdown, run_interruptible

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
    bound_shutdown(grace_s=0.5, deadline_s=2.0)
    started = threading.Event()

    async def polite():
        started.set()
        await asyncio.sleep(600)

    async def stubborn():
        try:
            await asyncio.sleep(600)
        except asyncio.CancelledError:
            print("stubborn run cancelled; blocking its thread", flush=True)
            time.sleep(600)  # a cleanup stuck in a call that no cancel reaches

    results = {}
    polite_thread = threading.Thread(target=lambda: results.setdefault("polite", run_interruptible(polite())))
    polite_thread.start()
    threading.Thread(target=run_interruptible, args=(stubborn(),), daemon=False).start()
    started.wait(10)
    worker_shutting_down.send(sender="test", sig="SIGTERM", how="Warm", exitcode=0)
    polite_thread.join(10)
    print(f"polite run returned {results.get('polite', 'nothing')!r}", flush=True)
    time.sleep(600)  # the main thread waits as Celery's would, for the stubborn one
    """
)


def test_runs_are_cancelled_after_the_grace_and_the_process_exits_at_the_deadline() -> None:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    took_s = time.monotonic() - began
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "polite run returned None" in out, out
    assert out.count("run interrupted by the worker's shutdown") == 1, out  # the polite one
    assert "stubborn run cancelled" in out, out
    assert "shutdown: still not stopped 2 s after the signal; exiting now" in out, out
    assert took_s < 30, took_s  # the 600 s sleeps were cut short: about 2 s plus start-up
