"""Celery entry points: thin wrappers that take ids and call one domain function.

``phonefleet.run_task(task_id)`` binds the log context, then runs ``perform_run`` in a loop of
its own (``asyncio.run``, which a bounded shutdown may cancel: ``worker.shutdown``; the worker's threads pool gives each run a thread). Retries are
decided by the error's class (``PhoneFleetError.retryable``), never by its text, and only errors
raised before the claim reach here, so a retry can never run a task twice: the claim decides.

A run that re-queued its task (an attempt the infrastructure ended: ``worker.run.drive``) asks,
through ``RunEnd``, for the task's message to be sent again with the backoff as its countdown, to
the queue this one came from (``resend``); so it does after a shutdown cancelled it. A message that
does not get through is the sweeper's to send again, once the retry is past due.

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
from orchestrator.queue import RUN_TASK, TASKS_QUEUE
from worker.run.drive import RunDeps, RunEnd, perform_run
from worker.shutdown import run_interruptible

__all__ = ["MAX_RETRIES", "RETRY_BACKOFF_S", "resend", "run_deps", "run_task", "use_run_deps"]

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
        end = RunEnd()
        try:
            # A worker's shutdown may cancel it (worker.shutdown): the run re-queues its task first.
            run_interruptible(perform_run(tid, deps, end))
        except PhoneFleetError as exc:
            retries = self.request.retries or 0
            if not exc.retryable or retries >= MAX_RETRIES:
                logger.error("run_task gave up", extra={"error": exc.code, "retries": retries})
                raise
            countdown = RETRY_BACKOFF_S[min(retries, len(RETRY_BACKOFF_S) - 1)]
            logger.warning("run_task will retry", extra={"error": exc.code, "countdown_s": countdown})
            raise self.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc
        finally:
            delivery = self.request.delivery_info or {}
            if end.retry_in_s is not None:
                resend(self.app, task_id, delivery.get("routing_key") or TASKS_QUEUE, end.retry_in_s)
            # An eval's next task into the slot this one freed: on this queue, as an eval's tasks
            # share one device profile (none).
            for next_id in end.send_now:
                resend(self.app, str(next_id), delivery.get("routing_key") or TASKS_QUEUE, 0)


def resend(app: Celery, task_id: str, queue: str, countdown_s: float) -> bool:
    """Send ``phonefleet.run_task(task_id)`` to ``queue``, to be delivered in ``countdown_s``; False
    (logged) when the broker does not take it: the sweeper sends it once the retry is past due."""
    try:
        app.send_task(RUN_TASK, args=[task_id], queue=queue, countdown=countdown_s)
    except Exception as exc:
        logger.warning(
            "could not send the re-queued task's message; the sweeper will",
            extra={"queue": queue, "error": f"{type(exc).__name__}: {exc}"},
        )
        return False
    logger.info("re-queued task's message sent", extra={"queue": queue, "countdown_s": countdown_s})
    return True
