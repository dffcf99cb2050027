"""A whole control plane per test, all real: PostgreSQL, Redis, the API over HTTP, a Celery worker
process (``phonefleet worker``), a virtual phone in a pool, and a model server.

Each test gets its own migrated PostgreSQL database (the pool leases *any* idle phone, so tests
sharing one would take each other's phones) and its own Celery queue (a name under the test's
Redis key prefix, so its keys are deleted afterwards). The pool manager runs in the test, on an
event loop of its own in a thread, and the test drives its passes (``Pool.settle``): resets and
reaps happen when the test says, so a test can look at the phone before it is reset.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from device_pool.pool import DeviceRecord, LeaseStore, PoolManager
from device_pool.providers import SimProvider
from orchestrator.api import create_app
from orchestrator.db import DeviceState, Event, Lease, Task, UserRole, make_engine, make_sessionmaker
from orchestrator.queue import TaskQueue, make_celery
from orchestrator.services.auth import issue_api_key
from orchestrator.settings import Settings
from tests.aio import run
from tests.asgi import serve_asgi
from tests.conditions import GiveUp, wait_until
from tests.conftest import REDIS_URL
from tests.databases import migrate_to_head, open_sessions, throwaway_postgres

# Reused, not copied: the providers' fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.factories import make_tenant
from tests.processes import REPO, AdbServer, stop_process

T = TypeVar("T")

FINAL = ("succeeded", "failed", "cancelled", "timed_out")


class LoopThread:
    """An event loop in a thread, so objects bound to one loop (asyncpg pools) serve a sync test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pool-loop", daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Pool:
    """A PoolManager over one SimProvider phone, its passes driven by the test."""

    manager: PoolManager
    loop: LoopThread

    @property
    def store(self) -> LeaseStore:
        return self.manager.store

    def devices(self) -> list[DeviceRecord]:
        return self.loop.call(self.store.devices())

    def settle(self, timeout: float = 30.0) -> list[DeviceRecord]:
        """Run reconcile passes (reap, reset, bring up) until every phone is idle."""
        deadline = time.monotonic() + timeout
        while True:
            self.loop.call(self.manager.reconcile())
            rows = self.devices()
            if rows and all(r.state == DeviceState.IDLE for r in rows):
                return rows
            assert time.monotonic() < deadline, f"phones not idle within {timeout} s: {rows}"
            time.sleep(0.1)

    def reconcile_until(self, done: Callable[[list[DeviceRecord]], bool], timeout: float = 30.0) -> None:
        """Run reconcile passes until ``done(phones)`` holds (``settle`` when not all are to be idle)."""

        def passed() -> bool:
            self.loop.call(self.manager.reconcile())
            return done(self.devices())

        wait_until(passed, timeout=timeout, interval=0.1, what="the pool reconciled as wanted")

    @contextmanager
    def managed(self, every_s: float = 0.2) -> Iterator[None]:
        """Reconcile every ``every_s`` in a thread while the block runs, as ``phonefleet pool`` does
        (it is woken by a release; here the test's phones are reset within ``every_s`` of one)."""
        stop = threading.Event()

        def passes() -> None:
            while not stop.wait(every_s):
                self.loop.call(self.manager.reconcile())

        thread = threading.Thread(target=passes, name="pool-passes", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)

    def shell(self, command: str) -> str:
        """Run ``command`` on the (only) phone over adb; its stdout."""
        from device_pool.driver import AdbDevice

        provider = self.manager.provider
        assert isinstance(provider, SimProvider)
        serial = self.devices()[0].serial
        phone = AdbDevice(serial, adb_port=provider.config.adb_port)
        return self.loop.call(phone.shell(command, check=True)).stdout


@dataclass
class Api:
    """The API served over HTTP, a tenant's key, and the queue the test's worker consumes."""

    url: str
    settings: Settings
    queue_name: str
    http: httpx.Client
    queue: TaskQueue

    def submit(self, instruction: str, **fields: Any) -> dict[str, Any]:
        response = self.http.post("/api/v1/tasks", json={"instruction": instruction, **fields})
        assert response.status_code == 202, response.text
        return response.json()

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, task_id: str, statuses: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
        """Poll the task until its status is one of ``statuses``; fail early if it ends otherwise."""

        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            if task["status"] in statuses:
                return task
            if task["status"] in FINAL:
                raise GiveUp(f"task ended {task['status']} ({task['reason']}: {task['message']})")
            return None

        return wait_until(reached, timeout=timeout, interval=0.05, what=f"task {task_id} in {statuses}")

    def enqueue(self, task_id: str) -> None:
        """Send another ``phonefleet.run_task`` for ``task_id`` (a duplicate delivery, or the sweeper's)."""
        run(self.queue.enqueue_run_task(uuid.UUID(task_id)))

    def queued(self) -> int:
        """Messages waiting in the test's queue (Redis list)."""
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            return int(client.llen(self.queue_name))
        finally:
            client.close()

    def answer(self, task_id: str, request: str, reply: str, payload: dict[str, Any]) -> None:
        """Wait for the worker's ``request`` event, then write ``reply`` as the next API endpoints will."""
        wait_until(
            lambda: any(e.type == request for e in self.rows(task_id)[1]),
            timeout=30, interval=0.05, what=f"a {request} event",
        )  # fmt: skip

        async def write() -> None:
            async with open_sessions(self.settings.database_url) as sessions, sessions.begin() as s:
                task = await s.get(Task, uuid.UUID(task_id))
                assert task is not None
                s.add(Event(tenant_id=task.tenant_id, task_id=task.id, type=reply, payload=payload))

        run(write())

    def rows(self, task_id: str) -> tuple[Task, list[Event], list[Lease]]:
        """The task row, its events (by id) and its leases, read from the database."""
        from sqlalchemy import select

        async def read() -> tuple[Task, list[Event], list[Lease]]:
            async with open_sessions(self.settings.database_url) as sessions, sessions() as s:
                tid = uuid.UUID(task_id)
                task = await s.get(Task, tid)
                events = list(await s.scalars(select(Event).where(Event.task_id == tid).order_by(Event.id)))
                leases = list(
                    await s.scalars(select(Lease).where(Lease.task_id == tid).order_by(Lease.acquired_at))
                )
                assert task is not None
                return task, events, leases

        return run(read())


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own."""
    with throwaway_postgres("pfwork") as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture
def api(tmp_path: Path, pg_url: str, redis_prefix: str) -> Iterator[Api]:
    # Screenshots stored encrypted, as a deployment with storage.encryption_key keeps them: every
    # test here then reads them back through the API, decrypted (docs/security.md).
    settings = Settings(
        data_dir=tmp_path / "data", database_url=pg_url, redis_url=REDIS_URL,
        storage={"encryption_key": "the runtask tests' storage key"},
    )  # fmt: skip
    queue_name = f"{redis_prefix}tasks"
    queue = TaskQueue(make_celery(settings), queue=queue_name)

    async def key() -> str:
        async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
            tenant = await make_tenant(session)
            issued = await issue_api_key(
                session, tenant_id=tenant.id, user_name="tester", role=UserRole.MEMBER
            )
            return issued.key

    with ExitStack() as stack:
        stack.callback(queue.close)
        url = stack.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
        http = stack.enter_context(
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {run(key())}"}, timeout=15)
        )
        yield Api(url=url, settings=settings, queue_name=queue_name, http=http, queue=queue)


@pytest.fixture
def pool(pg_url: str, make_sim_provider: MakeSimProvider) -> Iterator[Pool]:  # noqa: F811
    """One 720x1600 virtual phone, registered and idle."""
    yield from _pool(pg_url, make_sim_provider, phones=1)


@pytest.fixture
def two_phones(pg_url: str, make_sim_provider: MakeSimProvider) -> Iterator[Pool]:  # noqa: F811
    """Two virtual phones, registered and idle."""
    yield from _pool(pg_url, make_sim_provider, phones=2)


@pytest.fixture
def personal_pool(pg_url: str, make_sim_provider: MakeSimProvider, tmp_path: Path) -> Iterator[Pool]:  # noqa: F811
    """Two virtual phones, registered and idle, that can run personal phones (data in ``tmp_path/personal``)."""
    yield from _pool(pg_url, make_sim_provider, phones=2, personal_root=tmp_path / "personal")


def _pool(
    pg_url: str,
    make_sim_provider: MakeSimProvider,  # noqa: F811
    *,
    phones: int,
    personal_root: Path | None = None,
) -> Iterator[Pool]:
    provider = make_sim_provider(count=phones, max_count=phones, personal_root=personal_root)
    loop = LoopThread()
    engine = make_engine(pg_url)
    store = LeaseStore(make_sessionmaker(engine), "postgresql")
    # Slow timers: only the passes the test asks for run.
    manager = PoolManager(
        store, provider, min_idle=phones, max_devices=phones, health_interval_s=600, reap_interval_s=600
    )
    try:
        loop.call(provider.start())
        loop.call(manager.sync_devices())
        handle = Pool(manager=manager, loop=loop)
        handle.settle()
        yield handle
    finally:
        loop.call(store.close())
        loop.call(engine.dispose())
        loop.close()


@dataclass
class Worker:
    """A ``phonefleet worker`` process."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the crash a worker cannot clean up after."""
        self.proc.kill()
        self.proc.wait(10)


StartWorker = Callable[..., Worker]


def storage_key(settings: Settings) -> dict[str, str]:
    """The API's storage.encryption_key for a worker's environment (the same key on both sides)."""
    key = settings.storage.encryption_key
    return {} if key is None else {"PHONEFLEET_STORAGE__ENCRYPTION_KEY": key.get_secret_value()}


@pytest.fixture
def start_worker(tmp_path: Path, api: Api, adb_server: AdbServer) -> Iterator[StartWorker]:
    """Start ``phonefleet worker`` on the test's database, queue, data dir and adb server; wait until ready."""
    workers: list[Worker] = []

    def start(model_url: str, *, concurrency: int = 2, **env_overrides: str) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
        env.update(
            {
                "PHONEFLEET_DATABASE_URL": api.settings.database_url,
                "PHONEFLEET_REDIS_URL": REDIS_URL,
                "PHONEFLEET_DATA_DIR": str(api.settings.data_dir),
                "PHONEFLEET_MODEL__BASE_URL": model_url,
            }
            | storage_key(api.settings)
            | env_overrides  # any of them too (a test's own Redis)
        )
        log_path = tmp_path / f"worker-{len(workers)}.log"
        command = [
            sys.executable, "-m", "orchestrator.cli", "worker", "--concurrency", str(concurrency),
            "--queues", api.queue_name, "--adb-port", str(adb_server.port),
        ]  # fmt: skip
        with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        worker = Worker(proc=proc, log_path=log_path, env=env)
        workers.append(worker)

        def ready() -> bool:
            if proc.poll() is not None:
                raise GiveUp(f"phonefleet worker exited with {proc.returncode}:\n{worker.log()}")
            return " ready." in worker.log()

        wait_until(ready, timeout=30, interval=0.05, what="the worker is ready")
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            stop_process(worker.proc, timeout=15)


def people_script(directory: Path) -> Path:
    """A reference-model script that asks a person three times (takeover, question, confirmation)
    before it finishes: the replies the tests of people's answers drive a run with."""
    script = directory / "script.json"
    script.write_text(json.dumps([
        'do(action="Take_over", message="Please log in")',
        'do(action="Interact", message="Which size?")',
        'do(action="Tap", element=[500,500], message="Pay 10 EUR")',
        'finish(message="paid")',
    ]))  # fmt: skip
    return script
