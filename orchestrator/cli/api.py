"""``phonefleet api``: serve REST API v1 with uvicorn (settings from the environment).

uvicorn gets ``log_config=None``: it installs no logging of its own, and its lines (the access log
among them, each with the request's ``request_id``) go through ours (``device_pool.logs``).
"""

from __future__ import annotations

import argparse

from orchestrator.cli.port_file import PORT_FILE_HELP, run_uvicorn, write_port_file
from orchestrator.cli.refusal import refuse


def _serve_workers(host: str, port: int, workers: int, log_level: str, port_file: str | None = None) -> None:
    """uvicorn with several worker processes, sharing one listening socket with Nagle turned off.

    uvicorn binds that socket with protocol 0, and asyncio only sets TCP_NODELAY on accepted
    connections of sockets whose protocol is TCP, so every response on a kept-alive connection
    waited ~40 ms for the client's delayed ACK (measured: 44 ms vs 0.4 ms). Accepted sockets
    inherit the option from the listening one.
    """
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "orchestrator.cli.api:_app_in_worker_process", factory=True, host=host, port=port, workers=workers,
        log_level=log_level, log_config=None,
    )  # fmt: skip
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if port_file:
        write_port_file(port_file, sock.getsockname()[1])
    Multiprocess(config, sockets=[sock]).run()


def _app_in_worker_process():
    """uvicorn's factory in each worker process it spawns: our logging first (a spawned interpreter
    starts with none; the level and format come from the environment ``main`` set), then the app."""
    from device_pool.logs import configure_logging
    from orchestrator.api import create_app_from_env

    configure_logging()
    return create_app_from_env()


def _cmd_api(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from orchestrator.api import create_app
    from orchestrator.settings import load_settings

    overrides: dict[str, object] = {}
    if args.database_url:
        overrides["database_url"] = args.database_url
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        refuse("api", f"{exc}")
        return 2
    host = args.host or settings.api.host
    port = args.port if args.port is not None else settings.api.port
    if args.workers > 1:
        if overrides:
            # Each worker process builds its own settings from the environment.
            refuse("api", "with --workers > 1 set PHONEFLEET_DATABASE_URL instead")
            return 2
        _serve_workers(host, port, args.workers, args.log_level.lower(), args.port_file)
    else:
        run_uvicorn(
            create_app(settings, freeze_heap=True), args.port_file, host=host, port=port,
            log_level=args.log_level.lower(), log_config=None,
        )  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve the REST API (uvicorn)")
    parser.add_argument(
        "--host", default=None, help="listen address (default: PHONEFLEET_API__HOST, 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="listen port (default: PHONEFLEET_API__PORT, 8000; 0: any free one)"
    )
    parser.add_argument("--port-file", default=None, help=PORT_FILE_HELP)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes (default 1; use 2+ on PostgreSQL: one process is bound to one core)",
    )
    parser.add_argument(
        "--database-url", default=None, help="database (default: PHONEFLEET_DATABASE_URL or SQLite)"
    )
    parser.set_defaults(func=_cmd_api)
