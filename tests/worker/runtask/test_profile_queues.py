"""Named device profiles end to end: tasks submitted over HTTP land on their profile's queue, and a
real ``phonefleet worker`` consuming those queues leases by the profile's match object — then the
trajectory zip of what it ran is downloaded."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis

from orchestrator.api import create_app
from orchestrator.db import UserRole
from orchestrator.queue import TaskQueue, make_celery, queue_for
from orchestrator.services.auth import issue_api_key
from orchestrator.settings import Settings
from tests.aio import run
from tests.asgi import serve_asgi
from tests.conftest import REDIS_URL
from tests.databases import open_sessions
from tests.orchestrator.factories import make_tenant
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker

# The pool's one phone is 720x1600. "fits" matches it, "too_wide" matches nothing, and "api_only"
# is known to the API but not to the worker (settings that differ between processes).
WORKER_PROFILES = {"fits": {"width": 720, "height": 1600}, "too_wide": {"width": 1080}}
API_PROFILES = {**WORKER_PROFILES, "api_only": {"width": 720}}


@pytest.fixture
def api(tmp_path: Path, pg_url: str, redis_prefix: str) -> Iterator[Api]:
    """The runtask ``api``, with named profiles; ``start_worker`` consumes their three queues."""
    settings = Settings(
        data_dir=tmp_path / "data", database_url=pg_url, redis_url=REDIS_URL, pool={"profiles": API_PROFILES}
    )
    base = f"{redis_prefix}tasks"  # the test's own default queue; profiles' queues are derived from it
    queue = TaskQueue(make_celery(settings), queue=base)

    async def key() -> str:
        async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
            tenant = await make_tenant(session)
            issued = await issue_api_key(
                session, tenant_id=tenant.id, user_name="tester", role=UserRole.MEMBER
            )
            return issued.key

    # start_worker passes queue_name to `--queues`: the named profiles' queues, not the default one.
    queue_names = ",".join(queue_for(name, base=base) for name in API_PROFILES)
    with ExitStack() as stack:
        stack.callback(queue.close)
        url = stack.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
        http = stack.enter_context(
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {run(key())}"}, timeout=15)
        )
        yield Api(url=url, settings=settings, queue_name=queue_names, http=http, queue=queue)


def _waiting(api: Api) -> dict[str, int]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return {name: int(client.llen(name)) for name in [*api.queue_name.split(","), api.queue.queue]}
    finally:
        client.close()


def test_a_worker_runs_named_profile_tasks_from_their_queues(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    fits = api.submit("Open Settings", device_profile="fits", timeout_s=60)
    too_wide = api.submit("Open Settings", device_profile="too_wide", timeout_s=10)
    api_only = api.submit("Open Settings", device_profile="api_only", timeout_s=60)
    base = api.queue.queue
    assert _waiting(api) == {f"{base}.fits": 1, f"{base}.too_wide": 1, f"{base}.api_only": 1, base: 0}

    with serve(ModelServer(default=Reply('finish(message="done")'))) as model:
        start_worker(model.base_url, concurrency=3, PHONEFLEET_POOL__PROFILES=json.dumps(WORKER_PROFILES))
        done = api.wait_status(fits["id"], ("succeeded",), timeout=60)
        # The worker leased by the profile's match object: no phone is 1080 wide.
        unmatched = api.wait_status(too_wide["id"], ("failed",), timeout=60)
        unknown = api.wait_status(api_only["id"], ("failed",), timeout=30)
    assert done["device_id"] == str(pool.devices()[0].id) and done["device_profile"] == "fits"
    assert unmatched["reason"] == "no_device", unmatched
    assert unknown["reason"] == "unknown_profile" and "fits, too_wide" in unknown["message"], unknown
    assert all(n == 0 for n in _waiting(api).values())

    # The trajectory of the run: its one step, with the JPEG the model saw.
    r = api.http.get(f"/api/v1/tasks/{fits['id']}/trajectory")
    assert r.status_code == 200, r.text
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert json.loads(archive.read("task.json"))["status"] == "succeeded"
    [line] = [json.loads(x) for x in archive.read("steps.jsonl").decode().splitlines()]
    assert (line["index"], line["action"]["name"], line["screenshot"]) == (0, "finish", "screenshots/0.jpg")
    assert archive.read("screenshots/0.jpg")[:2] == b"\xff\xd8"
    pool.settle()
