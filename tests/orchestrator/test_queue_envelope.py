"""The Redis fast path's messages are Celery's own: the same bytes ``send_task`` writes, on the real Redis.

``TaskQueue`` pushes run_task messages built by ``RedisEnvelope`` (Celery's task message, kombu's
serializer and the Redis channel's own envelope code) with one LPUSH from redis.asyncio. These tests
compare them with what Celery's ``send_task`` through kombu's Redis transport writes for the same
task id, so a Celery/kombu upgrade that changes the format fails here. That a real Celery worker
consumes them is covered by tests/worker/runtask/ (test_run_task.py submits through the API and
its worker runs the task; test_profile_queues.py does so for named profiles' queues).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.queue import RUN_TASK, TASKS_QUEUE, TaskQueue, queue_for
from orchestrator.settings import Settings
from tests.aio import run
from tests.conftest import REDIS_URL
from tests.orchestrator.conftest import decode_celery_message


@pytest.fixture
def queue(tmp_path: Path, redis_prefix: str) -> Iterator[TaskQueue]:
    q = TaskQueue.from_settings(Settings(data_dir=tmp_path, redis_url=REDIS_URL), key_prefix=redis_prefix)
    yield q
    q.close()


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(REDIS_URL)
    yield r
    r.close()


@pytest.mark.parametrize("profile", [None, "pixel13"])
def test_the_built_message_is_what_send_task_writes(
    queue: TaskQueue, broker: redis.Redis, redis_prefix: str, profile: str | None
) -> None:
    name = queue_for(profile)
    task_id = str(uuid.uuid4())
    queue.celery.send_task(RUN_TASK, args=[task_id], queue=name, task_id=task_id)
    [sent] = broker.lrange(f"{redis_prefix}{name}", 0, -1)

    envelope = queue._open_envelope()  # what the first enqueue opens (it PINGs Redis once)
    key, built = envelope.build(RUN_TASK, [task_id], name, task_id=task_id)

    assert key == f"{redis_prefix}{name}"
    sent_tag = json.loads(sent)["properties"]["delivery_tag"]
    built_tag = json.loads(built)["properties"]["delivery_tag"]
    assert sent_tag != built_tag and uuid.UUID(built_tag)  # a fresh tag per message, as kombu makes them
    # Byte for byte, but for the delivery tag: field order, encoding, headers, properties, body.
    assert sent.decode().replace(sent_tag, built_tag) == built


def test_enqueue_pushes_one_decodable_message_per_call(
    queue: TaskQueue, broker: redis.Redis, redis_prefix: str
) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]

    async def enqueue() -> None:
        await queue.enqueue_run_task(ids[0], None)
        await queue.enqueue_run_task(ids[1], "tablet")
        await queue.aclose()

    run(enqueue())
    plain = [decode_celery_message(m) for m in broker.lrange(f"{redis_prefix}{TASKS_QUEUE}", 0, -1)]
    tablet = [decode_celery_message(m) for m in broker.lrange(f"{redis_prefix}{TASKS_QUEUE}.tablet", 0, -1)]
    assert [(m["task"], m["args"], m["kwargs"]) for m in plain] == [(RUN_TASK, [str(ids[0])], {})]
    assert [m["args"] for m in tablet] == [[str(ids[1])]]
    envelope = tablet[0]["envelope"]
    assert envelope["headers"]["id"] != plain[0]["envelope"]["headers"]["id"]  # a Celery id per message
    assert envelope["properties"]["delivery_info"] == {"exchange": "", "routing_key": f"{TASKS_QUEUE}.tablet"}


def test_a_queue_used_from_two_event_loops_works_in_both(
    queue: TaskQueue, broker: redis.Redis, redis_prefix: str
) -> None:
    """The sweeper calls ``asyncio.run`` per sweep: a redis.asyncio client of a closed loop is not reused."""
    run(queue.enqueue_run_task(uuid.uuid4()))
    run(queue.enqueue_run_task(uuid.uuid4()))
    assert broker.llen(f"{redis_prefix}{TASKS_QUEUE}") == 2


def test_an_events_wakeup_rides_in_the_enqueue_round_trip_only_on_the_same_redis(
    queue: TaskQueue, broker: redis.Redis, redis_prefix: str
) -> None:
    channel = f"{redis_prefix}events"
    pubsub = broker.pubsub()
    pubsub.subscribe(channel)
    try:
        assert pubsub.get_message(timeout=5)["type"] == "subscribe"
        same = run(queue.enqueue_run_task(uuid.uuid4(), publish=(REDIS_URL, channel, b"1")))
        other = run(queue.enqueue_run_task(uuid.uuid4(), publish=("redis://elsewhere:6379/0", channel, b"1")))
        message = pubsub.get_message(timeout=5)
        assert (same, other) == (True, False)  # False: the caller publishes it itself
        assert message is not None and (message["type"], message["data"]) == ("message", b"1")
        assert pubsub.get_message(timeout=0.2) is None  # only the first call published
    finally:
        pubsub.close()
    assert broker.llen(f"{redis_prefix}{TASKS_QUEUE}") == 2
