"""Serving an ASGI app for real: uvicorn on a free port of 127.0.0.1, in a thread of its own."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any, Literal

import uvicorn

from tests.conditions import GiveUp, wait_until


def bound_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 (TCP_NODELAY, inherited by accepted sockets)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit it: without it, Nagle + delayed ACK add ~40 ms to each streamed chunk
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (connections are refused)."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


@contextlib.contextmanager
def serve_asgi(
    app: Any, *, lifespan: Literal["auto", "on", "off"] = "auto", timeout: float = 10.0
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    Waits, with a deadline, until uvicorn has started (lifespan startup included); fails fast if
    the server thread dies during start-up.
    """
    sock = bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan=lifespan, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    # uvicorn installs no signal handlers outside the main thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{port}", daemon=True)
    thread.start()

    def ready() -> bool:
        if not thread.is_alive():
            raise GiveUp("the test server thread exited during start-up")
        return server.started

    try:
        wait_until(ready, timeout=timeout, interval=0.01, what=f"ASGI server on port {port} started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
