"""Waiting on conditions with a deadline: the only way tests synchronise (no bare sleeps)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class GiveUp(Exception):
    """Raised by a condition that can never become true (the process it waits on died)."""


def wait_until(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that, or raise after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # the condition may fail while the thing starts up
            last_exc = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"condition not met within {timeout}s: {what or predicate!r}{detail}")
        time.sleep(interval)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def reserved_ports(count: int = 1, start: int = 20000, end: int = 40000) -> Iterator[int]:
    """A base port P with P..P+count-1 held for a child process until the block ends.

    For a child that cannot listen on port 0 and say which port it got: adb's ``-P`` and the pool's
    ``base_port`` take numbers (the pool's, several in a row). Each port stays bound here, never
    listened on, with SO_REUSEADDR set after the bind: the child, which binds with SO_REUSEADDR
    (adb, uvicorn and asyncio servers all do), can still listen on it, while other processes' plain
    binds (another test's reservation included) and the kernel's ephemeral ports pass it by. A
    port probed free and let go, instead, can be taken by anyone before the child binds it.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        # One port: the OS's choice. A row of them: a random start above adb's 5555-5585 probe range.
        base = 0 if count == 1 else rng.randrange(start, end - count)
        held: list[socket.socket] = []
        try:
            for i in range(count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", base + i))  # exclusive: fails if anyone else holds it
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                base = base or sock.getsockname()[1]
        except OSError:
            for sock in held:
                sock.close()
            continue
        try:
            yield base
        finally:
            for sock in held:
                sock.close()
        return
    raise RuntimeError("no free port block found")
