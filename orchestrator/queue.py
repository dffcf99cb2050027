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

**The Redis fast path.** Celery's ``send_task`` costs ~0.9 ms of CPU and a thread hop per message; on
Redis, ``TaskQueue`` instead builds the message with Celery's and kombu's own code (the task
message of ``app.amqp.as_task_v2``, kombu's serializer, and the Redis channel's own envelope, key and
priority logic: ``RedisEnvelope``) and pushes it with one ``LPUSH`` from ``redis.asyncio``. The
SQLite broker keeps ``send_task``. tests/orchestrator/test_queue_envelope.py compares the two
byte for byte (so the format cannot drift with a Celery upgrade) and a real worker consumes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kombu.exceptions
import kombu.serialization
import redis.asyncio as aioredis
import redis.exceptions
from celery import Celery
from kombu.entity import maybe_delivery_mode
from kombu.utils.json import dumps as kombu_json_dumps
from sqlalchemy.exc import SQLAlchemyError

from orchestrator.errors import BrokerUnavailable
from orchestrator.settings import DEFAULT_PROFILE, Settings

__all__ = [
    "RUN_TASK",
    "TASKS_QUEUE",
    "RedisEnvelope",
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


# (Redis URL, channel, payload): a PUBLISH to send with an enqueue (see ``TaskQueue.enqueue``).
Publication = tuple[str, str, bytes]


def queue_for(device_profile: dict[str, Any] | str | None, *, base: str = TASKS_QUEUE) -> str:
    """The queue a task goes to: ``<base>.<name>`` for a named profile, else ``base``.

    ``device_profile`` is the task's field as stored: a name was checked against
    ``pool.profiles`` at submission, so it is a valid queue-name part (``PROFILE_NAME_PATTERN``).
    """
    return f"{base}.{device_profile}" if isinstance(device_profile, str) else base


def queues_for_profiles(names: Iterable[str], *, base: str = TASKS_QUEUE) -> list[str]:
    """The queues a worker consumes for profile ``names``; ``default`` is the default queue."""
    return [queue_for(None if name == DEFAULT_PROFILE else name, base=base) for name in names]


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


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
    if _is_redis(url):
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


class RedisEnvelope:
    """Celery task messages exactly as kombu's Redis transport writes them, built without sending.

    ``channel`` is a real kombu Redis channel of the Celery app's broker connection (opening it
    PINGs Redis once), so its transport options apply (``global_keyprefix``, priority steps,
    separator, body encoding); only its pure methods are called here: ``prepare_message``, the
    augmenting ``basic_publish`` does (base64 body, ``delivery_tag``, ``delivery_info``), and the
    priority → list key mapping of ``_put``. Two of those are private to kombu: the byte-for-byte
    test against ``send_task`` (tests/orchestrator/test_queue_envelope.py) fails if they change.
    """

    def __init__(self, celery: Celery, channel: Any) -> None:
        self.celery = celery
        self.channel = channel

    def build(self, name: str, args: list[Any], queue: str, task_id: str | None = None) -> tuple[str, str]:
        """(the Redis list key, the JSON payload) of a ``send_task(name, args=args, queue=queue)``."""
        app, channel = self.celery, self.channel
        task_id = task_id or str(uuid.uuid4())
        # What send_task passes for a task this app does not define (the worker defines it).
        headers, properties, body, _ = app.amqp.as_task_v2(
            task_id, name, args=args, kwargs={}, reply_to=app.thread_oid, ignore_result=None
        )
        # send_task_message: the queue's exchange is direct, so the anonymous exchange and the
        # queue's name as routing key; the delivery mode of its exchange or the app's default.
        declared = app.amqp.queues[queue]
        properties["delivery_mode"] = maybe_delivery_mode(
            declared.exchange.delivery_mode or app.conf.task_default_delivery_mode
        )
        content_type, content_encoding, data = kombu.serialization.dumps(body, serializer=app.conf.task_serializer)
        message = channel.prepare_message(data, None, content_type, content_encoding, headers, properties)
        channel._inplace_augment_message(message, "", queue)
        priority = channel._get_message_priority(message, reverse=False)
        key = channel.global_keyprefix + channel._q_for_pri(queue, priority)
        return key, kombu_json_dumps(message)


class TaskQueue:
    """Sends ``phonefleet.run_task`` messages, with a deadline.

    On Redis: one ``LPUSH`` from ``redis.asyncio`` of a message built by ``RedisEnvelope`` (a client
    per event loop: a redis.asyncio client belongs to the loop that made it). Otherwise Celery's
    ``send_task``, on a thread (kombu blocks). ``queue`` is the default queue's name; named
    profiles' queues are derived from it (tests give each their own).
    """

    def __init__(self, celery: Celery, *, queue: str = TASKS_QUEUE, timeout_s: float = 5.0) -> None:
        self.celery = celery
        self.queue = queue
        self.timeout_s = timeout_s
        url = str(celery.conf.broker_url or "")
        self._redis_url = url if _is_redis(url) else None
        self._envelope: RedisEnvelope | None = None
        self._envelope_connection: Any = None  # the kombu connection its channel belongs to
        self._envelope_lock = threading.Lock()  # first submissions may open it from two threads
        self._client: aioredis.Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, key_prefix: str = "") -> TaskQueue:
        """The queue the processes configured by ``settings`` share."""
        return cls(make_celery(settings, key_prefix=key_prefix))

    async def enqueue(
        self, name: str, args: list[Any], *, queue: str | None = None, publish: Publication | None = None
    ) -> bool:
        """Send task ``name`` with ``args`` to ``queue`` (default: the default queue); raises
        ``BrokerUnavailable`` when the broker does not take it.

        ``publish`` (Redis URL, channel, payload): also PUBLISH that, in the same round trip, when the
        broker is that Redis. Returns whether it was published (else the caller publishes it).
        """
        try:
            if self._redis_url is not None:
                if publish is not None and publish[0] != self._redis_url:
                    publish = None
                await asyncio.wait_for(self._push(name, args, queue or self.queue, publish), self.timeout_s)
                return publish is not None
            else:
                await asyncio.wait_for(
                    asyncio.to_thread(self._send, name, args, queue or self.queue), self.timeout_s
                )
                return False
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
        self,
        task_id: uuid.UUID,
        device_profile: dict[str, Any] | str | None = None,
        *,
        publish: Publication | None = None,
    ) -> bool:
        """Ask a worker to run task ``task_id``, on the queue of its ``device_profile`` (``queue_for``).

        ``publish``: as for ``enqueue``; returns whether it was published.
        """
        return await self.enqueue(
            RUN_TASK, [str(task_id)], queue=queue_for(device_profile, base=self.queue), publish=publish
        )

    async def waiting_run_tasks(self, device_profiles: Iterable[dict[str, Any] | str | None]) -> set[str] | None:
        """The task ids of ``phonefleet.run_task`` messages waiting in the queues of ``device_profiles``
        (sent, not yet taken by a worker); None when the broker cannot say (the SQLite broker).

        For the sweeper: a task whose message still waits has not lost it. One LRANGE per queue,
        read whole; raises ``BrokerUnavailable`` when Redis does not answer.
        """
        if self._redis_url is None:
            return None
        queues = {queue_for(profile, base=self.queue) for profile in device_profiles}
        try:
            envelope = self._envelope or await asyncio.to_thread(self._open_envelope)
            found: set[str] = set()
            for queue in sorted(queues):
                key = envelope.channel.global_keyprefix + envelope.channel._q_for_pri(queue, 0)
                raw = await asyncio.wait_for(self._redis().lrange(key, 0, -1), self.timeout_s)
                found.update(filter(None, map(_run_task_id, raw)))
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"the broker did not list its queues: {type(exc).__name__}: {exc}") from exc
        return found

    async def warm(self, *, timeout_s: float = 1.0) -> None:
        """Open now what the first enqueue would open: on Redis, the message envelope (kombu's
        transport, imported and connected on a thread) and this loop's client with a connection.

        Done lazily, the first submissions of a fresh API process queued 60–115 ms behind it. A
        broker that is down is logged after at most ``timeout_s`` and left to the enqueues (which
        leave tasks to the sweeper); startup does not wait on it longer.
        """
        if self._redis_url is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                if self._envelope is None:
                    await asyncio.to_thread(self._open_envelope)
                await self._redis().ping()
        except (*_BROKER_ERRORS, TimeoutError) as exc:
            logger.warning("broker not reachable at startup: %s: %s", type(exc).__name__, exc)

    async def ping(self) -> None:
        """Check the broker answers; raises ``BrokerUnavailable`` if not."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), self.timeout_s)
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(f"broker unreachable: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Close the producer pool's connections (``aclose`` also closes the asyncio client)."""
        self._client = self._client_loop = None  # its sockets close with it; see aclose
        if self._envelope_connection is not None:
            self._envelope_connection.release()
            self._envelope_connection = self._envelope = None
        self.celery.close()

    async def aclose(self) -> None:
        """``close``, plus closing this loop's Redis client cleanly."""
        client = self._client if self._client_loop is asyncio.get_running_loop() else None
        self.close()
        if client is not None:
            await client.aclose()

    async def _push(self, name: str, args: list[Any], queue: str, publish: Publication | None) -> None:
        envelope = self._envelope or await asyncio.to_thread(self._open_envelope)
        key, payload = envelope.build(name, args, queue)
        if publish is None:
            await self._redis().lpush(key, payload)
            return
        # Not a transaction (MULTI): the PUBLISH is a hint; one round trip is what is wanted.
        async with self._redis().pipeline(transaction=False) as pipe:
            pipe.lpush(key, payload)
            pipe.publish(publish[1], publish[2])
            await pipe.execute()

    def _open_envelope(self) -> RedisEnvelope:
        with self._envelope_lock:
            return self._envelope or self._open_envelope_locked()

    def _open_envelope_locked(self) -> RedisEnvelope:
        if self._envelope is None:
            connection = self.celery.connection_for_write()
            try:
                # One quick retry, never kombu's default of retrying for seconds: a broker that is
                # down fails this enqueue now (the sweeper is the retry), and a process that is
                # stopping is not held by a thread still trying.
                connection.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0, timeout=self.timeout_s)
                channel = connection.default_channel  # connects: PING
            except BaseException:
                connection.release()
                raise
            self._envelope_connection, self._envelope = connection, RedisEnvelope(self.celery, channel)
        return self._envelope

    def _redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            assert self._redis_url is not None
            # The transport's bounded waits (make_celery): a hung broker must not hang a request.
            options = self.celery.conf.broker_transport_options or {}
            self._client = aioredis.Redis.from_url(
                self._redis_url,
                socket_connect_timeout=options.get("socket_connect_timeout", 3),
                socket_timeout=options.get("socket_timeout", 5),
            )
            self._client_loop = loop
        return self._client

    def _send(self, name: str, args: list[Any], queue: str) -> None:
        self.celery.send_task(name, args=args, queue=queue)

    def _ping(self) -> None:
        with self.celery.connection_for_write() as conn:
            # connect() opens a channel, which on Redis sends PING; no retries: readiness wants now.
            conn.ensure_connection(max_retries=1, timeout=self.timeout_s)
            conn.connect()


def _run_task_id(raw: bytes) -> str | None:
    """The task id a ``phonefleet.run_task`` message in a Redis queue carries; None for anything else."""
    try:
        message = json.loads(raw)
        if message["headers"].get("task") != RUN_TASK:
            return None
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError):  # not ours, or not Celery's: not a run
        return None
