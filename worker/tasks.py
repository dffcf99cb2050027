"""Celery entry points: thin wrappers that take ids and call one domain function.

``phonefleet.run_task(task_id)`` binds the log context, then runs ``perform_run`` in a loop of
its own (``asyncio.run``; the worker's threads pool gives each session a thread). Retries are
decided by the error's class (``PhoneFleetError.retryable``), never by its text, and only errors
raised before the claim reach here, so a retry can never run a task twice: the claim decides.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from celery import Celery
from celery import Task as CeleryTask

from device_pool.errors import PhoneFleetError
from device_pool.logs import bind
from orchestrator.queue import RUN_TASK
from worker.run.drive import RunDeps, perform_run

__all__ = ["RETRY_BACKOFF_S", "register", "run_task"]

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # by retry number; a database restart takes seconds


def run_task(task: CeleryTask, task_id: str, deps: RunDeps) -> None:
    """Run the task ``task_id`` names; retry later when a retryable error stopped it before its claim."""
    try:
        tid = uuid.UUID(task_id)
    except ValueError:
        logger.error("not a task id; message dropped", extra={"task_id": task_id})
        return
    with bind(task_id=tid):
        try:
            asyncio.run(perform_run(tid, deps))
        except PhoneFleetError as exc:
            retries = task.request.retries or 0
            if not exc.retryable or retries >= MAX_RETRIES:
                logger.error("run_task gave up", extra={"error": exc.code, "retries": retries})
                raise
            countdown = RETRY_BACKOFF_S[min(retries, len(RETRY_BACKOFF_S) - 1)]
            logger.warning("run_task will retry", extra={"error": exc.code, "countdown_s": countdown})
            raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES) from exc


def register(app: Celery, deps: RunDeps) -> CeleryTask:
    """Register ``phonefleet.run_task`` on ``app``, running sessions with ``deps``."""

    @app.task(name=RUN_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def _run_task(self: CeleryTask, task_id: str) -> None:
        run_task(self, task_id, deps)

    return _run_task
