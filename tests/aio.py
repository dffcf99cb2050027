"""Running driver coroutines from sync tests (no pytest-asyncio), with a hard deadline against hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
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


def phone_has_file(data_root: Path, name: str) -> Callable[[], bool]:
    """A predicate: a file called ``name`` exists in the phone's data directory (its /data, /sdcard …)."""
    return lambda: any(data_root.rglob(name))
