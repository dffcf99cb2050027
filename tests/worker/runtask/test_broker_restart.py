"""A worker consumes again by itself after its Redis stops and starts (a Redis of the test's own).

The wedge this guards against: with every thread of the worker busy (``--concurrency 1``, one
run), kombu stops polling the broker socket, so the worker does not see Redis go. The run then
ends while Redis is down, its late ack fails, and before ``worker.broker_link`` the worker
consumed nothing more, for good. Here a task submitted after Redis is back must be claimed within
30 s of its start.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path

from orchestrator.queue import TaskQueue, make_celery
from orchestrator.settings import Settings
from tests.aio import run
from tests.conditions import wait_until
from tests.redis_servers import private_redis
from tests.worker.agent.model_servers import Gate, ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker

FINISH = 'finish(message="done")'
OUTAGE_S = 10.0


def test_a_worker_consumes_again_after_its_redis_restarts(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    redis_stopped = threading.Event()
    script = [Gate(redis_stopped, Reply(FINISH)), Reply(FINISH)]  # the first run ends while Redis is down
    with private_redis(tmp_path / "redis") as redis_server, serve(ModelServer(*script)) as model:
        worker = start_worker(model.base_url, concurrency=1, PHONEFLEET_REDIS_URL=redis_server.url)
        settings = Settings(data_dir=tmp_path / "q", redis_url=redis_server.url)

        def enqueue(task_id: str) -> None:
            # The worker's broker is the private Redis: the API's own message went elsewhere.
            queue = TaskQueue(make_celery(settings), queue=api.queue_name)
            try:
                run(queue.enqueue_run_task(uuid.UUID(task_id)))
            finally:
                queue.close()

        first = api.submit("Open Settings", timeout_s=120)
        enqueue(first["id"])
        wait_until(lambda: len(model.requests) == 1, timeout=60, what="the first run's model request")
        redis_server.stop()
        stopped_at = time.monotonic()
        redis_stopped.set()
        api.wait_status(first["id"], ("succeeded",), timeout=60)
        # Its late ack failed: Celery's own line before the fix, worker.broker_link's after it.
        wait_until(
            lambda: "Couldn't ack" in worker.log() or "could not ack a message" in worker.log(),
            timeout=30, what="the failed ack",
        )  # fmt: skip

        second = api.submit("Open Settings", timeout_s=120)  # its message went to the API's Redis
        # The outage the issue saw: 10 s (a scenario's length, not a wait for something to happen).
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        redis_server.start()
        back_at = time.monotonic()
        enqueue(second["id"])
        wait_until(
            lambda: api.task(second["id"])["status"] != "queued",
            timeout=45, what="the second task claimed by the worker",
        )  # fmt: skip
        consumed_after_s = time.monotonic() - back_at
        print(f"claimed {consumed_after_s:.1f} s after Redis came back")
        pool.settle()  # the phone is reset for the second run
        done = api.wait_status(second["id"], ("succeeded",), timeout=60)

    assert consumed_after_s < 30, (consumed_after_s, worker.log())
    assert done["result"]["steps"] == 1, done
    pool.settle()


def test_a_worker_stops_within_10_s_of_sigterm_with_a_run_waiting_and_its_redis_gone(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    """Celery's warm shutdown waits for runs in progress; this one waits on a model that never answers,
    with Redis gone. The worker cancels it (worker.shutdown) and exits; the run re-queues its task
    (an infrastructure end: ``worker_shutdown``) and hands the phone back. Its delayed message cannot
    reach the stopped Redis: that is logged, and left to the sweeper."""
    never = threading.Event()
    with (
        private_redis(tmp_path / "redis") as redis_server,
        serve(ModelServer(Gate(never, limit_s=300))) as model,
    ):
        worker = start_worker(model.base_url, concurrency=1, PHONEFLEET_REDIS_URL=redis_server.url)
        queue = TaskQueue(
            make_celery(Settings(data_dir=tmp_path / "q", redis_url=redis_server.url)), queue=api.queue_name
        )
        task = api.submit("Open Settings", timeout_s=120)
        try:
            run(queue.enqueue_run_task(uuid.UUID(task["id"])))
        finally:
            queue.close()
        wait_until(lambda: len(model.requests) == 1, timeout=60, what="the run's model request")
        redis_server.stop()  # returns once its port refuses connections: Redis is gone for the worker
        # (Nothing in the worker need have noticed yet: its consumer is not polling, every thread is
        # busy, and a run that found a free phone holds no wake-up subscriber.)
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        returncode = worker.proc.wait(timeout=30)
        took_s = time.monotonic() - signalled
        never.set()

    print(f"phonefleet worker exited {took_s:.1f} s after SIGTERM")
    assert returncode == 0, worker.log()
    assert took_s < 10, (took_s, worker.log())
    assert "run interrupted by the worker's shutdown" in worker.log()
    assert "could not send the re-queued task's message; the sweeper will" in worker.log()
    row, events, leases = api.rows(task["id"])
    assert row.status == "queued" and row.worker_id is None and row.attempts == 1, row
    assert row.waiting["kind"] == "retrying" and row.retry_at is not None, row.waiting
    assert [e.payload["reason"] for e in events if e.type == "task.retrying"] == ["worker_shutdown"]
    assert len(leases) == 1 and leases[0].release_reason == "released", leases
    pool.settle()
