"""Celery entry points: thin wrappers that take ids and call one domain function.

``phonefleet.run_task(task_id)`` binds the log context, then runs ``perform_run`` in a loop of
its own (``asyncio.run``, which a bounded shutdown may cancel: ``worker.shutdown``; the worker's threads pool gives each run a thread). Retries are
decided by the error's class (``PhoneFleetError.retryable``), never by its text, and only errors
raised before the claim reach here, so a retry can never run a task twice: the claim decides.

The task is a ``shared_task``: importing this module registers it on every Celery app when that
app is finalized. What it runs with (``RunDeps``) is not a global: ``use_run_deps`` puts it on the
app (``worker.celery_app.make_worker_app`` does), and the task reads it from ``self.app``.
"""

from __future__ import annotations

import logging
import uuid

from celery import Celery, shared_task
from celery import Task as CeleryTask

from device_pool.errors import PhoneFleetError
from device_pool.logs import bind
from orchestrator.queue import RUN_TASK
from worker.run.drive import RunDeps, perform_run
from worker.shutdown import run_interruptible

__all__ = ["MAX_RETRIES", "RETRY_BACKOFF_S", "run_deps", "run_task", "use_run_deps"]

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # by retry number; a database restart takes seconds

# The attribute of a Celery app that holds the RunDeps its run_task runs with.
_DEPS_ATTR = "phonefleet_run_deps"


def use_run_deps(app: Celery, deps: RunDeps) -> None:
    """Make ``app``'s ``phonefleet.run_task`` run with ``deps``."""
    setattr(app, _DEPS_ATTR, deps)


def run_deps(app: Celery) -> RunDeps:
    """The RunDeps ``use_run_deps`` put on ``app``; RuntimeError when none were."""
    deps = getattr(app, _DEPS_ATTR, None)
    if not isinstance(deps, RunDeps):
        raise RuntimeError("this Celery app has no RunDeps: build it with worker.celery_app.make_worker_app")
    return deps


@shared_task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_task(self: CeleryTask, task_id: str) -> None:
    """Run the task ``task_id`` names; retry later when a retryable error stopped it before its claim."""
    try:
        tid = uuid.UUID(task_id)
    except ValueError:
        logger.error("not a task id; message dropped", extra={"task_id": task_id})
        return
    deps = run_deps(self.app)
    with bind(task_id=tid):
        try:
            # A worker's shutdown may cancel it (worker.shutdown): the task is then left to be re-claimed.
            run_interruptible(perform_run(tid, deps))
        except PhoneFleetError as exc:
            retries = self.request.retries or 0
            if not exc.retryable or retries >= MAX_RETRIES:
                logger.error("run_task gave up", extra={"error": exc.code, "retries": retries})
                raise
            countdown = RETRY_BACKOFF_S[min(retries, len(RETRY_BACKOFF_S) - 1)]
            logger.warning("run_task will retry", extra={"error": exc.code, "countdown_s": countdown})
            raise self.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc
