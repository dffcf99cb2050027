"""``--port-file``: where a server started with ``--port 0`` says which port the OS gave it.

Binding port 0 leaves no gap in which another process could take the port, as choosing a free
port first and binding it later does. Whoever started the server (``phonefleet up``, the tests)
reads the port from the file, which appears only once the socket is bound: connections queue
from then on, so a reader may connect at once. A file, not a log line: it reads the same whatever
the log format.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

PORT_FILE_HELP = "once listening, write the port to this file (with --port 0: the one the OS chose)"


def write_whole(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` whole (a temporary name, then a rename): a reader polling for the file
    sees no file or all of it, never half."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


def write_port_file(path: str | os.PathLike[str], port: int) -> None:
    """Write ``port`` to ``path`` whole: a reader sees no file or the complete number."""
    write_whole(path, f"{port}\n")


def read_port_file(path: str | os.PathLike[str]) -> int | None:
    """The port in ``path``, or None while the server has not written it yet."""
    try:
        return int(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return None


def run_uvicorn(app: Any, port_file: str | None, **config: Any) -> None:
    """``uvicorn.run(app, **config)``; with ``port_file``, the bound port is written there first."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    if port_file is None:
        uvicorn.run(app, **config)
        return
    cfg = uvicorn.Config(app, **config)
    sock = cfg.bind_socket()  # exits with STARTUP_FAILURE if it cannot bind, as uvicorn.run does
    write_port_file(port_file, sock.getsockname()[1])
    server = uvicorn.Server(cfg)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run does
