"""The live view for real: a virtual phone, the real adb server, the API over HTTP, aiortc viewers.

``live_api`` is the API (``start_api``) with ICE pinned to 127.0.0.1 and small, fast settings: video
at most 360 px wide, short linger and lease checks. ``lease_phone`` registers a test's phone in the
API's database and leases it, through the pool's real ``LeaseStore``, to a tenant (for a task or a
session); the lease is released when the block ends. Phones are 720x1600 (the video: 360x800).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from device_pool.driver import AdbDevice
from device_pool.pool import LeaseGrant, LeaseStore
from orchestrator.db import ApiKey, Event, Task, TaskStatus, make_engine, make_sessionmaker, utcnow
from tests.asgi import bound_socket
from tests.conftest import AdbServer
from tests.orchestrator.conftest import Api, Caller, StartApi
from tests.processes import SimPhones, start_sim

PHONE = (720, 1600)
VIDEO = (360, 800)


def live_settings(adb_port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "host_addresses": ["127.0.0.1"],
        "adb_port": adb_port,
        "max_width": VIDEO[0],
        "linger_s": 0.2,
        "lease_check_s": 0.2,
        "connect_timeout_s": 15,
        **overrides,
    }


@pytest.fixture
def live_phone(tmp_path: Path) -> Iterator[SimPhones]:
    """A 720x1600 virtual phone of this test's own."""
    phones = start_sim(tmp_path, count=1, width=PHONE[0], height=PHONE[1], density=320)
    try:
        yield phones
    finally:
        phones.stop()


@pytest.fixture
def live_api(start_api: StartApi, migrated_pg_url: str, adb_server: AdbServer) -> Api:
    return start_api(migrated_pg_url, webrtc=live_settings(adb_server.port))


def http_for(api: Api, caller: Caller) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {caller.key}"}, timeout=30)


@dataclass
class Leased:
    grant: LeaseGrant
    store: LeaseStore

    @property
    def device_id(self) -> uuid.UUID:
        return self.grant.device_id

    async def release(self) -> None:
        await self.store.release(self.grant.lease_id, self.grant.holder)


@asynccontextmanager
async def lease_phone(
    db_url: str, serial: str, tenant_id: uuid.UUID | None, *, task_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None, holder: str | None = None,
) -> AsyncIterator[Leased]:  # fmt: skip
    """Register ``serial`` and lease it (a profile key of its own, so no other test's phone is picked);
    ``holder``: as a session's lease is held (``session_holder``), so its keepalive heartbeats it."""
    engine = make_engine(db_url)
    store = LeaseStore.for_engine(engine)
    mark = uuid.uuid4().hex
    try:
        record = await store.register(provider="sim", serial=serial, profile={"live_test": mark})
        await store.mark_idle(record.id)
        grant = await store.acquire(
            holder=holder or f"test-{mark[:8]}", tenant_id=tenant_id, task_id=task_id, session_id=session_id,
            profile={"live_test": mark}, ttl_s=600,
        )  # fmt: skip
        assert grant is not None and grant.device_id == record.id
        leased = Leased(grant, store)
        try:
            yield leased
        finally:
            await leased.release()
    finally:
        await store.close()
        await engine.dispose()


async def user_of(db_url: str, caller: Caller) -> uuid.UUID:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await session.scalar(select(ApiKey.user_id).where(ApiKey.id == caller.key_id))
    finally:
        await engine.dispose()


async def add_task(db_url: str, tenant_id: uuid.UUID, status: TaskStatus, *, took_over_by: uuid.UUID | None = None) -> uuid.UUID:
    """A task row in ``status`` (and the ``task.takeover`` event of ``took_over_by``)."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            task = Task(id=uuid.uuid4(), tenant_id=tenant_id, instruction="live view test", status=status,
                        created_at=utcnow())  # fmt: skip
            session.add(task)
            await session.flush()
            if took_over_by is not None:
                payload = {"status": "running", "note": None, "user_id": str(took_over_by)}
                session.add(Event(tenant_id=tenant_id, task_id=task.id, type="task.takeover", payload=payload))
            return task.id
    finally:
        await engine.dispose()


async def set_task_status(db_url: str, task_id: uuid.UUID, status: TaskStatus) -> None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            task = await session.get(Task, task_id)
            assert task is not None
            task.status = status
    finally:
        await engine.dispose()


async def ticking_phone(serial: str, adb_port: int, hz: float = 10) -> AdbDevice:
    """The phone through the driver, its frame counter redrawn ``hz`` times a second: a screen that
    keeps changing (``hz`` 0: drawn once, then still). aiortc's receiver hands over a picture only
    when the next one arrives; on a still screen that is the stream's repeat (``repeat_ms``)."""
    phone = AdbDevice(serial, adb_port=adb_port)
    await phone.connect(timeout=30)
    await phone.shell(f"phonefleet-sim frame-counter on --tick {hz:g}", check=True)
    return phone


@asynccontextmanager
async def serve_here(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` on this event loop (not a thread), so a test sees the API's tasks as its own."""
    sock = bound_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(15):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
