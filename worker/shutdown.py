"""A ``phonefleet worker`` stops within seconds of SIGTERM, whatever else is down.

Celery's warm shutdown waits for every task in progress to end, and a run lasts as long as its
agent (up to an hour), or waits on a model, a phone or a broker that may never answer. So the
worker bounds it (``bound_shutdown``, installed by ``phonefleet worker``):

- runs get ``GRACE_S`` to end by themselves; then each is cancelled (``run_interruptible``
  cancels its ``asyncio`` task, so the run's own cleanup — the watcher stopped, the lease
  released, shielded — still runs) and its Celery task returns without a result;
- at ``DEADLINE_S`` after the signal, a process that has still not exited (a cleanup blocked on
  a database that does not answer, a broker close that hangs) exits at once, with one log line.

An interrupted run leaves its task as it was (``leasing`` or ``running``, claimed by this worker):
its heartbeat stops, so it is re-claimed by the next delivery or the sweeper as for a worker that
died (docs/control-plane.md, "Worker"). The database is the truth; nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["DEADLINE_S", "GRACE_S", "bound_shutdown", "run_interruptible"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

GRACE_S = 2.0  # after SIGTERM, before runs in progress are cancelled
DEADLINE_S = 8.0  # after SIGTERM, before the process exits whatever still waits (operators allow 10 s)

_lock = threading.Lock()
_runs: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}
_interrupting = threading.Event()  # set once runs are to be cancelled: a run that starts later is too


def run_interruptible(coro: Coroutine[Any, Any, T]) -> T | None:
    """``asyncio.run(coro)`` that a bounded shutdown may cancel; None when it did."""

    async def main() -> T:
        task = asyncio.current_task()
        assert task is not None
        with _lock:
            _runs[task] = asyncio.get_running_loop()
            if _interrupting.is_set():
                task.cancel()
        try:
            return await coro
        finally:
            with _lock:
                _runs.pop(task, None)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if not _interrupting.is_set():
            raise
        logger.warning("run interrupted by the worker's shutdown; its task is left to be re-claimed")
        return None


def interrupt_runs() -> int:
    """Cancel every run in progress (and any that starts from now on); how many were running."""
    with _lock:
        _interrupting.set()
        runs = list(_runs.items())
    for task, loop in runs:
        loop.call_soon_threadsafe(task.cancel)
    return len(runs)


def bound_shutdown(grace_s: float = GRACE_S, deadline_s: float = DEADLINE_S) -> None:
    """From the first SIGTERM/SIGINT/SIGQUIT on: cancel runs after ``grace_s``, exit at ``deadline_s``."""
    from celery.signals import worker_shutting_down

    started = threading.Event()

    def on_shutting_down(**_: object) -> None:
        # Called in Celery's signal handler: start a timer thread and return at once.
        if not started.is_set():
            started.set()
            deadline = threading.Thread(
                target=_enforce, args=(grace_s, deadline_s), name="shutdown-deadline", daemon=True
            )
            deadline.start()

    worker_shutting_down.connect(on_shutting_down, weak=False)


def _enforce(grace_s: float, deadline_s: float) -> None:
    time.sleep(grace_s)
    count = interrupt_runs()
    if count:
        logger.warning(
            "shutdown: runs still in progress after %g s are cancelled", grace_s, extra={"runs": count}
        )
    time.sleep(max(0.0, deadline_s - grace_s))
    logger.error("shutdown: still not stopped %g s after the signal; exiting now", deadline_s)
    logging.shutdown()
    os._exit(1)
