"""The worker's Celery app: ``orchestrator.queue.make_celery`` plus the options a worker needs.

- ``acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged when its run ends,
  so a worker that dies mid-task leaves it for redelivery; ``worker_prefetch_multiplier=1``: a
  worker reserves no more messages than it has free threads (runs are long).
- Redelivery after ``orchestrator.queue.VISIBILITY_TIMEOUT_S`` (2 h, Redis) is above the longest
  budget (``timeout_s`` ≤ 3600 s) plus the longest phone wait
  (``worker.run.drive.MAX_LEASE_WAIT_S``); a redelivery that comes anyway finds the task claimed
  by a live worker and does nothing.
- A Redis restart does not wedge the consumer (``worker.broker_link``): a failed late ack frees its
  prefetch slot, and reconnects are tried every few seconds with no limit on tries.
- Remote control (pidbox), gossip, mingle and worker heartbeats are off: nothing uses them, and
  each is a fan-out queue or a periodic broker message per worker.

Queues: a worker consumes the default queue and one queue per named device profile
(``orchestrator.queue``); ``worker_queues`` picks them from ``--profiles`` (default: all of them).

No module-level app or Settings: ``phonefleet worker`` builds both. For the ``celery`` command line,
``app`` below is a lazy proxy that builds them from the environment on first use:
``celery -A worker.celery_app:app worker --pool threads -Q phonefleet.tasks,phonefleet.tasks.pixel13``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.local import PromiseProxy

from orchestrator.queue import TASKS_QUEUE, VISIBILITY_TIMEOUT_S, make_celery, queues_for_profiles
from orchestrator.settings import DEFAULT_PROFILE, Settings
from worker.broker_link import SlotFreeingRequest, SteadyConsumer
from worker.run.drive import MAX_LEASE_WAIT_S, RunDeps
from worker.tasks import use_run_deps

__all__ = ["app", "make_worker_app", "worker_argv", "worker_queues"]

_LONGEST_BUDGET_S = 3600  # orchestrator.services.specs.TaskSpec.timeout_s's upper bound
assert _LONGEST_BUDGET_S + MAX_LEASE_WAIT_S < VISIBILITY_TIMEOUT_S, "a redelivery would race a live run"


def make_worker_app(settings: Settings, *, adb_port: int = 5037, deps: RunDeps | None = None) -> Celery:
    """The Celery app a worker runs: ``phonefleet.run_task`` registered, running with ``deps``."""
    app = make_celery(settings)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
        # Our entry point configures logging (with the run's log context).
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # A worker started before its broker (phonefleet up) waits for it instead of exiting.
        broker_connection_retry_on_startup=True,
        # Runs survive a broker reconnect: the database claim, not the message, owns the task.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # A worker whose broker went away reconnects whenever it comes back, however long that takes.
        broker_connection_max_retries=None,
        worker_consumer=f"{SteadyConsumer.__module__}:{SteadyConsumer.__qualname__}",
    )
    use_run_deps(app, deps or RunDeps.from_settings(settings, adb_port=adb_port))
    # Every task the worker runs acks through it (app.tasks finalizes the app: run_task is a shared_task).
    for task in app.tasks.values():
        task.Request = SlotFreeingRequest
    return app


def worker_queues(settings: Settings, profiles: list[str] | None = None) -> list[str]:
    """The queues a worker consumes for profile names (``default`` is the default queue).

    ``None``: the default queue and every profile in ``pool.profiles``. Raises ``ValueError``
    naming the known profiles for a name ``pool.profiles`` does not define (its tasks could not be
    leased a phone by this worker).
    """
    known = sorted(settings.pool.profiles)
    if profiles is None:
        profiles = [DEFAULT_PROFILE, *known]
    unknown = [name for name in profiles if name != DEFAULT_PROFILE and name not in settings.pool.profiles]
    if unknown:
        raise ValueError(
            f"unknown device profile(s): {', '.join(unknown)}; known: {', '.join([DEFAULT_PROFILE, *known])}"
            " (named profiles come from PHONEFLEET_POOL__PROFILES)"
        )
    if not profiles:
        raise ValueError("no profiles to consume")
    return queues_for_profiles(dict.fromkeys(profiles))  # in order, without repeats


def worker_argv(*, concurrency: int, queues: str = TASKS_QUEUE, loglevel: str = "INFO") -> list[str]:
    """The ``celery worker`` arguments ``phonefleet worker`` runs with (threads: one run per thread)."""
    return [
        "worker",
        "--pool", "threads",
        "--concurrency", str(concurrency),
        "-Q", queues,
        "--loglevel", loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip


def _app_from_env() -> Any:
    from orchestrator.settings import load_settings

    return make_worker_app(load_settings())


# For `celery -A worker.celery_app:app`: built on first attribute access, never at import.
app = PromiseProxy(_app_from_env)
