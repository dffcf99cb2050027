"""Running driver coroutines from sync tests (no pytest-asyncio), with a hard deadline against hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from tests.conditions import wait_until

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """asyncio.run with an outer deadline: a hung driver call fails the test instead of blocking it."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """``wait_until`` from async code, polled on a thread so the event loop keeps running."""
    return await asyncio.to_thread(wait_until, predicate, timeout, 0.02, what)


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, what: str = "", interval: float = 0.05
) -> T:
    """Await ``check()`` until it returns something truthy (and return that), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what or check!r} (last: {value!r})")
        await asyncio.sleep(interval)


def phone_has_file(data_root: Path, name: str) -> Callable[[], bool]:
    """A predicate: a file called ``name`` exists in the phone's data directory (its /data, /sdcard …)."""
    return lambda: any(data_root.rglob(name))
