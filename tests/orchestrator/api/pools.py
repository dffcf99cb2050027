"""A pool manager running beside the API in a test: real phones, reset after every lease.

``running_pool`` runs ``PoolManager.run()`` on an event loop of its own in a thread (its asyncpg pool
is bound to that loop), with long timers so that only the wake-ups under test explain a prompt
reset: the store's ``RedisSignal`` receives the API process's ``released`` notifications (the API
builds its signal from ``redis_url``) and publishes ``idle`` to the API's lease waiters.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from device_pool.pool import DeviceRecord, LeaseStore, PoolManager, RedisSignal
from device_pool.providers import Provider
from orchestrator.db import DeviceState, make_engine, make_sessionmaker
from tests.conditions import wait_until
from tests.conftest import REDIS_URL
from tests.worker.runtask.conftest import LoopThread

SLOW = 600.0  # manager timers: only a wake-up (or an explicit pass) makes it act within a test


@dataclass
class RunningPool:
    """A ``PoolManager`` over one provider, running; read its rows from the test."""

    manager: PoolManager
    loop: LoopThread

    @property
    def store(self) -> LeaseStore:
        return self.manager.store

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on the pool's loop (for the store, whose engine lives there)."""
        return self.loop.call(coro, timeout)

    def device(self, device_id: uuid.UUID | str) -> DeviceRecord:
        record = self.call(self.store.device(uuid.UUID(str(device_id))))
        assert record is not None, f"no device {device_id}"
        return record

    def wait_state(
        self, device_id: uuid.UUID | str, state: DeviceState, timeout: float = 30.0
    ) -> DeviceRecord:
        return wait_until(
            lambda: (r := self.device(device_id)).state == state and r,
            timeout=timeout,
            interval=0.05,
            what=f"device {device_id} {state.value}",
        )

    def all_idle(self, timeout: float = 60.0) -> list[DeviceRecord]:
        def idle() -> list[DeviceRecord] | None:
            rows = self.call(self.store.devices(self.manager.provider.name))
            return rows if rows and all(r.state == DeviceState.IDLE for r in rows) else None

        return wait_until(idle, timeout=timeout, interval=0.05, what="every phone idle")


@contextmanager
def running_pool(
    db_url: str,
    provider: Provider | Callable[[LeaseStore], Provider],
    *,
    settle: bool = True,
    **manager_options: Any,
) -> Iterator[RunningPool]:
    """Start the provider's phones, register them, and run the manager until the block ends
    (``settle``: first wait until every phone is idle). ``provider`` may be built from the store."""
    loop = LoopThread()
    engine = make_engine(db_url)
    store = LeaseStore(make_sessionmaker(engine), engine.dialect.name, signal=RedisSignal(REDIS_URL))
    if not isinstance(provider, Provider):
        provider = provider(store)
    options = {"min_idle": 0, "max_devices": 8, "health_interval_s": SLOW, "reap_interval_s": SLOW}
    manager = PoolManager(store, provider, **{**options, **manager_options})
    runner: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal runner
        await provider.start()
        await manager.sync_devices()
        runner = asyncio.create_task(manager.run(), name="test-pool-manager")

    async def stop() -> None:
        manager.stop()
        if runner is not None:
            await runner
        await provider.close()
        await store.close()
        await engine.dispose()

    try:
        loop.call(start(), timeout=120)
        pool = RunningPool(manager, loop)
        if settle:
            pool.all_idle()
        yield pool
    finally:
        loop.call(stop(), timeout=60)
        loop.close()
