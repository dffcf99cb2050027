"""Enqueueing Celery tasks by name: the API's only link to the workers (it never imports ``worker``).

The broker is Redis when ``settings.redis_url`` is set, otherwise kombu's SQLAlchemy transport on a
SQLite file under ``data_dir`` (what ``phonefleet up`` runs). A message is a hint, not the truth: the
task row is committed before the message is sent, and a sweeper re-enqueues ``queued`` tasks whose
message was lost, so a failed enqueue is reported (``BrokerUnavailable``) and never loses a task.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Celery
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.errors import BrokerUnavailable
from orchestrator.settings import Settings

__all__ = ["RUN_TASK", "TASKS_QUEUE", "TaskQueue", "broker_url", "make_celery"]

logger = logging.getLogger(__name__)

RUN_TASK = "phonefleet.run_task"
TASKS_QUEUE = "phonefleet.tasks"  # one queue for now; a queue per device profile comes later

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
    """Sends ``phonefleet.run_task`` messages; blocking kombu calls run on a thread, with a deadline."""

    def __init__(self, celery: Celery, *, queue: str = TASKS_QUEUE, timeout_s: float = 5.0) -> None:
        self.celery = celery
        self.queue = queue
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = "") -> TaskQueue:
        """The queue the processes configured by ``settings`` share."""
        return cls(make_celery(settings, key_prefix=key_prefix))

    async def enqueue(self, name: str, args: list[Any]) -> None:
        """Send task ``name`` with ``args``; raises ``BrokerUnavailable`` when the broker does not take it."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, name, args), self.timeout_s)
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

    async def enqueue_run_task(self, task_id: uuid.UUID) -> None:
        """Ask a worker to run task ``task_id``."""
        await self.enqueue(RUN_TASK, [str(task_id)])

    async def ping(self) -> None:
        """Check the broker answers; raises ``BrokerUnavailable`` if not."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), self.timeout_s)
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"broker unreachable: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close the producer pool's connections."""
        self.celery.close()

    def _send(self, name: str, args: list[Any]) -> None:
        self.celery.send_task(name, args=args, queue=self.queue)

    def _ping(self) -> None:
        with self.celery.connection_for_write() as conn:
            # connect() opens a channel, which on Redis sends PING; no retries: readiness wants now.
            conn.ensure_connection(max_retries=1, timeout=self.timeout_s)
            conn.connect()
