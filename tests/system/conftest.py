"""The whole control plane as the separate processes it runs as in production, on PostgreSQL + Redis.

``start_fleet`` starts ``phonefleet api`` (served over HTTP), ``phonefleet pool`` (virtual phones
from the sim provider, the reaper and the task sweeper) and, per test, ``phonefleet worker``
processes (Celery, threads) and a ``phonefleet reference-model --script`` (the model server). Each
reads its settings from the environment, as under ``phonefleet up``; nothing runs in the test's
process but HTTP calls and reads of the database.

Each fleet gets a migrated PostgreSQL database of its own and an empty Redis database index of its
own: the processes' settings have no Celery key prefix, so they use the default queue name, and a
shared index would mix their queue with other tests'. Every process is started in a session of
its own and stopped by its pid; a worker can be SIGKILLed by its process group (``Service.kill``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from PIL import Image
from sqlalchemy import Select, select

from orchestrator.cli.port_file import read_port_file
from orchestrator.db import Event, Lease, UserRole
from orchestrator.services.auth import issue_api_key
from tests.aio import run
from tests.conditions import GiveUp, reserved_ports, wait_until
from tests.conftest import REDIS_URL
from tests.databases import migrate_to_head, open_sessions, throwaway_postgres
from tests.orchestrator.factories import make_tenant
from tests.processes import REPO, AdbServer, ReferenceModel, start_reference_model, stop_process

FINAL = ("succeeded", "failed", "cancelled", "timed_out")
_CLAIM_KEY = "pftest:system:claimed"  # marks a Redis database index as taken by a running fleet


@dataclass
class Service:
    """One ``phonefleet`` child process and its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} (exit {self.proc.poll()}) ---\n" + "\n".join(
            self.log().splitlines()[-lines:]
        )

    def kill(self) -> None:
        """SIGKILL to its process group (its own session): a crash that cleans nothing up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        stop_process(self.proc, timeout=timeout)


def _spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Service:
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", *argv], cwd=REPO, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return Service(name, proc, log_path)


@dataclass
class Fleet:
    """A running control plane: the API's URL and a tenant's key, its processes and its database."""

    url: str
    key: str
    http: httpx.Client
    db_url: str
    data_dir: Path
    adb_port: int
    env: dict[str, str] = field(repr=False)  # what every child process gets
    logs: Path = field(repr=False)
    services: list[Service] = field(default_factory=list)
    models: list[ReferenceModel] = field(default_factory=list)
    pool_args: list[str] = field(default_factory=list)  # `phonefleet pool`'s options beyond --adb-port

    def stop(self) -> None:
        """Workers first (no new sessions), then the model servers, the pool (it stops its phones), the API."""
        for service in self.services:
            if service.name.startswith("worker"):
                service.stop(30)
        for model in self.models:
            model.stop()
        for name in ("pool", "api"):
            for service in self.services:
                if service.name == name:
                    service.stop(30)

    def tails(self) -> str:
        """The end of every process's log, for assertion messages."""
        return "\n".join(s.tail() for s in self.services)

    def service(self, name: str) -> Service:
        """The newest process called ``name`` (``api``, ``pool``, ``worker-0`` …)."""
        return next(s for s in reversed(self.services) if s.name == name)

    # --- processes -------------------------------------------------------------------------------

    def start_pool(self) -> Service:
        """``phonefleet pool`` on the fleet's database, queue and adb server (again, after a crash, as a
        supervisor would: the same command, its log appended to the same file)."""
        argv = ["pool", "--adb-port", str(self.adb_port), *self.pool_args]
        pool = _spawn("pool", argv, self.env, self.logs)
        self.services.append(pool)
        return pool

    def start_worker(self, model_url: str, *, concurrency: int = 1, **env: str) -> Service:
        """``phonefleet worker`` on the fleet's database, queue and adb server; waits until Celery is ready."""
        return self.start_workers(model_url, 1, concurrency=concurrency, **env)[0]

    def start_workers(self, model_url: str, count: int, *, concurrency: int = 1, **env: str) -> list[Service]:
        """``count`` workers (as ``start_worker``), started together, then waited on until each is ready."""
        workers = []
        for _ in range(count):
            worker = _spawn(
                f"worker-{sum(s.name.startswith('worker') for s in self.services)}",
                ["worker", "--concurrency", str(concurrency), "--adb-port", str(self.adb_port)],
                {**self.env, "PHONEFLEET_MODEL__BASE_URL": model_url, **env},
                self.logs,
            )
            self.services.append(worker)
            workers.append(worker)
        for worker in workers:

            def ready(worker: Service = worker) -> bool:
                if worker.proc.poll() is not None:
                    raise GiveUp(worker.tail())
                return " ready." in worker.log()

            wait_until(ready, timeout=60, interval=0.1, what=f"{worker.name} ready")
        return workers

    def start_model(self, script: list[str], *, port: int | None = None) -> ReferenceModel:
        """The reference model replaying ``script`` (scripted mode: no OCR, the same replies for every task),
        on ``port`` (one the test holds, e.g. to start it again there) or one the OS picks."""
        path = self.logs / f"script-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(script))
        model = start_reference_model(self.logs, script=path, timeout=60, port=port)
        self.models.append(model)
        return model

    # --- the API ---------------------------------------------------------------------------------

    def submit(self, instruction: str, **fields: Any) -> dict[str, Any]:
        response = self.http.post("/api/v1/tasks", json={"instruction": instruction, **fields})
        assert response.status_code == 202, response.text
        return response.json()

    def task(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of the fleet's tenant (all pages)."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = self.http.get("/api/v1/tasks", params=params)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                return items

    def steps(self, task_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/v1/tasks/{task_id}/steps", params={"limit": 100})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def screenshot(self, step: dict[str, Any]) -> Image.Image:
        response = self.http.get(step["screenshot_url"])
        assert response.status_code == 200, response.text
        return Image.open(BytesIO(response.content)).convert("RGB")

    def devices(self, state: str | None = None) -> list[dict[str, Any]]:
        response = self.http.get(
            "/api/v1/devices", params={"limit": 100, **({"state": state} if state else {})}
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def wait_status(self, task_id: str, statuses: tuple[str, ...], timeout: float) -> dict[str, Any]:
        """Poll the task until its status is one of ``statuses``; fail early if it ends otherwise."""

        def reached() -> dict[str, Any] | None:
            task = self.task(task_id)
            if task["status"] in statuses:
                return task
            if task["status"] in FINAL:
                raise GiveUp(
                    f"task ended {task['status']} ({task['reason']}: {task['message']})\n{self.tails()}"
                )
            return None

        return wait_until(reached, timeout=timeout, interval=0.1, what=f"task {task_id} in {statuses}")

    # --- the database (what no route shows: the lease log, the event outbox) ------------------------

    def leases(self) -> list[Lease]:
        """The lease log, oldest first."""
        return self.rows(select(Lease).order_by(Lease.acquired_at, Lease.id))

    def events(self, task_id: str) -> list[Event]:
        query = select(Event).where(Event.task_id == uuid.UUID(task_id)).order_by(Event.id)
        return self.rows(query)

    def rows(self, query: Select[Any]) -> list[Any]:
        """The rows (ORM objects) ``query`` selects, read in one db session."""

        async def read() -> list[Any]:
            async with open_sessions(self.db_url) as sessions, sessions() as s:
                return list(await s.scalars(query))

        return run(read())


@contextmanager
def claim_redis_db() -> Iterator[str]:
    """The URL of a Redis database index that held no keys, taken until exit; emptied afterwards."""
    base = REDIS_URL.rsplit("/", 1)[0]
    for index in range(1, 16):  # db 0 is the other tests'; the submission bench takes the highest empty one
        client = redis.Redis.from_url(f"{base}/{index}")
        try:
            if not client.set(_CLAIM_KEY, "1", nx=True):
                continue
            if client.dbsize() == 1:
                break
            client.delete(_CLAIM_KEY)  # someone else's keys are here
        finally:
            client.close()
    else:
        raise RuntimeError("no empty Redis database index (1-15) for the fleet")
    try:
        yield f"{base}/{index}"
    finally:
        client = redis.Redis.from_url(f"{base}/{index}")
        try:
            keys = [k for k in client.scan_iter(count=1000) if k != _CLAIM_KEY.encode()]
            if keys:
                client.delete(*keys)
            client.delete(_CLAIM_KEY)
        finally:
            client.close()


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A Redis database index of this test's own (``claim_redis_db``)."""
    with claim_redis_db() as url:
        yield url


@pytest.fixture
def fleet_pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database of this fleet's own (the pool leases any idle phone in it)."""
    with throwaway_postgres("pfsys") as db:
        migrate_to_head(db.url)
        yield db.url


async def _member_key(db_url: str) -> str:
    async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
        tenant = await make_tenant(session)
        issued = await issue_api_key(
            session, tenant_id=tenant.id, user_name="system-test", role=UserRole.MEMBER
        )
        return issued.key


@pytest.fixture
def start_fleet(tmp_path: Path, fleet_pg_url: str, redis_db: str, adb_server: AdbServer) -> Iterator[Any]:
    """``start_fleet(phones, pool_args=[], **env)`` → a ``Fleet`` whose pool has ``phones`` idle phones.

    ``env`` adds ``PHONEFLEET_…`` settings for every process (e.g. a short lease TTL). Workers and
    model servers are started by the test (``fleet.start_worker``, ``fleet.start_model``).
    Everything is stopped by pid afterwards (``Fleet.stop``).
    """
    with fleet_starter(tmp_path, fleet_pg_url, redis_db, adb_server) as start:
        yield start


@contextmanager
def standalone_fleet(phones: int, prefix: str) -> Iterator[Fleet]:
    """A fleet of ``phones`` outside pytest (the benches): its own adb server, PostgreSQL database and
    Redis index, in a temporary folder, all gone on exit. SystemExit without Debian's adb."""
    import tempfile

    from tests.processes import adb_binary, start_adb_server

    binary = adb_binary()
    if binary is None:
        raise SystemExit("Debian's adb client is needed (apt-get install adb)")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        adb = start_adb_server(Path(tmp) / "adbhome", binary)
        try:
            with (
                throwaway_postgres("pfbench") as db,
                claim_redis_db() as redis_url,
                fleet_starter(Path(tmp), db.url, redis_url, adb) as start,
            ):
                migrate_to_head(db.url)
                yield start(phones)
        finally:
            adb.stop()


@contextmanager
def fleet_starter(tmp_path: Path, fleet_pg_url: str, redis_db: str, adb_server: AdbServer) -> Iterator[Any]:
    """``start_fleet``'s body, for callers outside pytest (``bench/bench_first_step.py``)."""
    with ExitStack() as stack:

        def start(phones: int, *, pool_args: list[str] | None = None, **env: str) -> Fleet:
            logs = tmp_path / "logs"
            logs.mkdir(exist_ok=True)
            data_dir = tmp_path / "data"
            child_env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
            child_env.update(
                HOME=str(adb_server.home),  # the adb server's key lives there
                PHONEFLEET_DATABASE_URL=fleet_pg_url,
                PHONEFLEET_REDIS_URL=redis_db,
                PHONEFLEET_DATA_DIR=str(data_dir),
                PHONEFLEET_POOL__COUNT=str(phones),
                PHONEFLEET_POOL__MIN_IDLE=str(phones),
                # The pool takes a number (a row of them): reserved for its phones while the fleet runs.
                PHONEFLEET_POOL__BASE_PORT=str(stack.enter_context(reserved_ports(phones))),
                # A test submits its tasks at once: the default burst (50) would be the whole budget.
                PHONEFLEET_AUTH__RATE_LIMIT_BURST="1000",
                **env,
            )
            port_file = logs / f"api-{uuid.uuid4().hex[:6]}.port"
            api = _spawn("api", ["api", "--port", "0", "--port-file", str(port_file)], child_env, logs)
            stack.callback(api.stop, 30)  # until the fleet (which stops it in order) exists

            def bound() -> int | None:
                if api.proc.poll() is not None:
                    raise GiveUp(api.tail())
                return read_port_file(port_file)

            url = f"http://127.0.0.1:{wait_until(bound, timeout=60, interval=0.05, what='the API listening')}"
            http = stack.enter_context(
                httpx.Client(
                    base_url=url, headers={"Authorization": f"Bearer {run(_member_key(fleet_pg_url))}"},
                    timeout=30, trust_env=False,
                )
            )  # fmt: skip
            fleet = Fleet(
                url=url, key=http.headers["Authorization"].split()[1], http=http, db_url=fleet_pg_url,
                data_dir=data_dir, adb_port=adb_server.port, env=child_env, logs=logs, pool_args=pool_args or [],
            )  # fmt: skip
            stack.callback(fleet.stop)
            fleet.services.append(api)
            fleet.start_pool()

            def idle() -> bool:
                for service in fleet.services:
                    if service.proc.poll() is not None:
                        raise GiveUp(fleet.tails())
                return len(fleet.devices("idle")) == phones

            wait_until(idle, timeout=90, interval=0.2, what=f"the API up and {phones} phones idle")
            return fleet

        yield start
