"""A run keeps going while its Redis stops and starts again (a Redis of the test's own).

The worker's ``redis_url`` (its broker, the model's in-flight cap, the wake-up hints) is a private
Redis that the test stops while the agent's model request is in flight and keeps down for
``OUTAGE_S`` (the issue's bound: a run survives at least 60 s without Redis), while the run goes on
asking the model (on a local slot), then starts again (empty, on the same port). The database is
the truth: the task must still succeed, on its first attempt.
"""

from __future__ import annotations

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

TAP = 'do(action="Tap", element=[500,500])'
OUTAGE_S = 60.0


def test_a_run_goes_on_through_a_redis_outage(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    stopped_mid_request, asked_while_down = threading.Event(), threading.Event()
    script = [
        Reply(TAP),
        Gate(stopped_mid_request, Reply(TAP)),  # Redis stops while this request holds its slot
        Gate(asked_while_down, Reply(TAP)),  # asked for while Redis is down: a local slot
        Reply('finish(message="done")'),
    ]
    with private_redis(tmp_path / "redis") as redis_server, serve(ModelServer(*script)) as model:
        worker = start_worker(model.base_url, PHONEFLEET_REDIS_URL=redis_server.url)
        task = api.submit("Open Settings", timeout_s=120)
        # The worker's broker is the private Redis: the API's message went elsewhere.
        settings = Settings(data_dir=tmp_path / "q", redis_url=redis_server.url)
        queue = TaskQueue(make_celery(settings), queue=api.queue_name)
        try:
            run(queue.enqueue_run_task(uuid.UUID(task["id"])))
        finally:
            queue.close()

        wait_until(lambda: len(model.requests) == 2, timeout=60, what="the second model request")
        redis_server.stop()
        stopped = time.monotonic()
        stopped_mid_request.set()
        wait_until(lambda: len(model.requests) == 3, timeout=60, what="a model request while Redis is down")
        # The outage's length is the fault under test (not a wait for something): Redis stays down.
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        assert worker.proc.poll() is None, worker.log()[-4000:]
        redis_server.start()
        asked_while_down.set()
        done = api.wait_status(task["id"], ("succeeded",), timeout=90)

    assert done["result"]["steps"] == 4 and done["attempts"] == 1, done
    # One warning for the outage (not one per request), with the endpoint and the error.
    fallbacks = [line for line in worker.log().splitlines() if "model slots: Redis unreachable" in line]
    assert len(fallbacks) == 1 and " WARNING " in fallbacks[0], fallbacks
    assert f"endpoint={model.base_url}|" in fallbacks[0] and "error=" in fallbacks[0], fallbacks
    leases = api.rows(task["id"])[2]
    assert len(leases) == 1 and leases[0].release_reason == "released", leases
    pool.settle()
