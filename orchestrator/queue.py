"""Enqueueing Celery tasks by name: the API's only link to the workers (it never imports ``worker``).

The broker is Redis when ``settings.redis_url`` is set, otherwise kombu's SQLAlchemy transport on a
SQLite file under ``data_dir`` (what ``phonefleet up`` runs). A message is a hint, not the truth: the
task row is committed before the message is sent, and a sweeper re-enqueues ``queued`` tasks whose
message was lost, so a failed enqueue is reported (``BrokerUnavailable``) and never loses a task.

**A queue per device profile.** A task whose ``device_profile`` names a profile of
``settings.pool.profiles`` goes to ``phonefleet.tasks.<name>``; one with an ad-hoc object or none
goes to ``phonefleet.tasks``. ``queue_for`` is the one place that decides, and every enqueue (the
API's, the sweeper's) goes through ``TaskQueue.enqueue_run_task``, which calls it. Workers choose
what they consume with ``queues_for_profiles`` (``phonefleet worker --profiles``), so phones of a
scarce profile are not waited for by workers whose threads the common tasks need.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Celery
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.errors import BrokerUnavailable
from orchestrator.settings import DEFAULT_PROFILE, Settings

__all__ = [
    "RUN_TASK",
    "TASKS_QUEUE",
    "TaskQueue",
    "broker_url",
    "make_celery",
    "queue_for",
    "queues_for_profiles",
]

logger = logging.getLogger(__name__)

RUN_TASK = "phonefleet.run_task"
TASKS_QUEUE = "phonefleet.tasks"  # the default queue; a named profile's is TASKS_QUEUE + "." + name

# Above the longest task budget (timeout_s ≤ 3600) plus leasing: Redis redelivers an unacked
# message after this long, to a second worker while the first may still run it.
VISIBILITY_TIMEOUT_S = 2 * 3600

# Errors a publish or a connection check can raise when the broker is down or refuses us.
_BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.KombuError,
    redis.exceptions.RedisError,
    SQLAlchemyError,
    OSError,
    TimeoutError,
)


def queue_for(device_profile: dict[str, Any] | str | None, *, base: str = TASKS_QUEUE) -> str:
    """The queue a task goes to: ``<base>.<name>`` for a named profile, else ``base``.

    ``device_profile`` is the task's field as stored: a name was checked against
    ``pool.profiles`` at submission, so it is a valid queue-name part (``PROFILE_NAME_PATTERN``).
    """
    return f"{base}.{device_profile}" if isinstance(device_profile, str) else base


def queues_for_profiles(names: Iterable[str], *, base: str = TASKS_QUEUE) -> list[str]:
    """The queues a worker consumes for profile ``names``; ``default`` is the default queue."""
    return [queue_for(None if name == DEFAULT_PROFILE else name, base=base) for name in names]


def broker_url(settings: Settings) -> str:
    """Redis when configured, else a SQLite file ``broker.sqlite`` under ``data_dir``."""
    if settings.redis_url:
        return settings.redis_url
    return f"sqla+sqlite:///{settings.data_dir / 'broker.sqlite'}"


def make_celery(settings: Settings, *, key_prefix: str = "") -> Celery:
    """A Celery app for ``settings``' broker; ``key_prefix`` namespaces every Redis key (tests)."""
    url = broker_url(settings)
    if url.startswith("sqla+sqlite:"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    # (The SQLAlchemy transport hands its options to create_engine, so they are Redis-only.)
    transport_options: dict[str, Any] = {}
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Bounded waits: a broker that accepts but never answers must not hang a request.
        transport_options |= {
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "socket_connect_timeout": 3,
            "socket_timeout": 5,
        }
        if key_prefix:
            transport_options["global_keyprefix"] = key_prefix
    app = Celery("phonefleet", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=TASKS_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options=transport_options,
        broker_connection_timeout=3,
        broker_connection_retry_on_startup=False,
        # Retry a publish once, quickly; after that the sweeper is the retry.
        task_publish_retry_policy={
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
    )
    return app


class TaskQueue:
    """Sends ``phonefleet.run_task`` messages; blocking kombu calls run on a thread, with a deadline.

    ``queue`` is the default queue's name; named profiles' queues are derived from it (tests give
    each their own).
    """

    def __init__(self, celery: Celery, *, queue: str = TASKS_QUEUE, timeout_s: float = 5.0) -> None:
        self.celery = celery
        self.queue = queue
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = "") -> TaskQueue:
        """The queue the processes configured by ``settings`` share."""
        return cls(make_celery(settings, key_prefix=key_prefix))

    async def enqueue(self, name: str, args: list[Any], *, queue: str | None = None) -> None:
        """Send task ``name`` with ``args`` to ``queue`` (default: the default queue); raises
        ``BrokerUnavailable`` when the broker does not take it."""
        try:
            await asyncio.wait_for(
                asyncio.to_thread(self._send, name, args, queue or self.queue), self.timeout_s
            )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(
                f"the broker did not accept {name}: {type(exc).__name__}: {exc}",
                context={"task": name},
            ) from exc
        except Exception as exc:
            # A broken client (bad option, missing dependency) is a bug to log loudly, but callers
            # have committed the row already: a 500 would make clients resubmit an existing task.
            logger.exception("unexpected error from the broker client while sending %s", name)
            raise BrokerUnavailable(
                f"the broker client failed: {type(exc).__name__}", context={"task": name}
            ) from exc

    async def enqueue_run_task(
        self, task_id: uuid.UUID, device_profile: dict[str, Any] | str | None = None
    ) -> None:
        """Ask a worker to run task ``task_id``, on the queue of its ``device_profile`` (``queue_for``)."""
        await self.enqueue(RUN_TASK, [str(task_id)], queue=queue_for(device_profile, base=self.queue))

    async def ping(self) -> None:
        """Check the broker answers; raises ``BrokerUnavailable`` if not."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), self.timeout_s)
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"broker unreachable: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close the producer pool's connections."""
        self.celery.close()

    def _send(self, name: str, args: list[Any], queue: str) -> None:
        self.celery.send_task(name, args=args, queue=queue)

    def _ping(self) -> None:
        with self.celery.connection_for_write() as conn:
            # connect() opens a channel, which on Redis sends PING; no retries: readiness wants now.
            conn.ensure_connection(max_retries=1, timeout=self.timeout_s)
            conn.connect()
