"""``phonefleet adb SESSION_ID``: the real ``adb`` to a session's phone, through the API's tunnel.

Listens on 127.0.0.1 (``--port``, default one the OS picks) and carries each connection made to it
over ``WS /api/v1/sessions/{id}/adb``, authenticated by the API key, to the session's phone
(``orchestrator/services/adb_tunnel.py``). Your adb server sees an ordinary TCP phone:

    phonefleet adb 7c9e6679-…            # prints: adb connect 127.0.0.1:40123
    adb connect 127.0.0.1:40123
    adb -s 127.0.0.1:40123 shell

The port is on the loopback address only, so no other machine reaches it. The command ends (exit 0)
when the session ends (closed or expired: the API closes every tunnel then), on Ctrl-C (exit 130),
and at once with exit 1 when the key or the session is not good (the API's error on stderr). ``--url``
and ``--api-key`` are found as for ``phonefleet task``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable

from orchestrator.cli.task import add_api_arguments, run_against_api

__all__ = ["TunnelServer", "register"]

_PROG = "phonefleet adb"
_SESSION_CHECK_S = 5.0  # how often the command asks whether the session still lives
_CHUNK = 64 * 1024


class TunnelServer:
    """The local end: a loopback listener whose every connection is relayed over one WebSocket."""

    def __init__(self, url: str, api_key: str, session_id: str, *, port: int = 0) -> None:
        base = url.rstrip("/")
        self.ws_url = ("wss://" + base[8:] if base.startswith("https://") else "ws://" + base.removeprefix("http://"))
        self.ws_url += f"/api/v1/sessions/{session_id}/adb"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.port = port
        self.ended = asyncio.Event()
        self.end_reason = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; the port bound."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def _end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        try:
            async with connect(self.ws_url, additional_headers=self.headers, max_size=None,
                               open_timeout=15) as ws:  # fmt: skip

                async def up() -> None:
                    while data := await reader.read(_CHUNK):
                        await ws.send(data)
                    await ws.close()

                async def down() -> None:
                    async for message in ws:
                        writer.write(message if isinstance(message, bytes) else message.encode())
                        await writer.drain()

                tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
                try:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    for task in tasks:
                        with contextlib.suppress(BaseException):
                            await task
                code, reason = ws.close_code, ws.close_reason or ""
                if code is not None and code >= 4000:
                    self._end(f"the API closed the tunnel ({code}): {reason}")
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as exc:
            print(f"{_PROG}: tunnel connection failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _serve(args: argparse.Namespace, announce: Callable[[str], None]) -> int:
    from orchestrator.async_client import AsyncPhoneFleetClient

    async with AsyncPhoneFleetClient(args.url, args.api_key) as client:
        session = await client.session(args.session_id)  # a bad key or session fails here, clearly
        if session["state"] != "active":
            print(f"{_PROG}: session {args.session_id} is {session['state']}: it holds no phone", file=sys.stderr)
            return 1
        tunnel = TunnelServer(args.url, args.api_key, args.session_id, port=args.port)
        port = await tunnel.start()
        announce(
            f"ADB tunnel to session {args.session_id} on 127.0.0.1:{port} (Ctrl-C ends it)\n"
            f"  adb connect 127.0.0.1:{port}\n  adb -s 127.0.0.1:{port} shell"
        )
        try:
            while not tunnel.ended.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tunnel.ended.wait(), _SESSION_CHECK_S)
                if not tunnel.ended.is_set():
                    state = (await client.session(args.session_id))["state"]
                    if state != "active":
                        tunnel._end(f"session {args.session_id} is {state}")
        finally:
            await tunnel.close()
        print(f"{_PROG}: {tunnel.end_reason}", file=sys.stderr)
        return 0


def _cmd_adb(args: argparse.Namespace) -> int:
    return run_against_api(args, _PROG, lambda args: asyncio.run(_serve(args, lambda text: print(text, flush=True))))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("adb", help="adb to a session's phone through the API's authenticated tunnel")
    parser.add_argument("session_id", help="an active session of yours (POST /api/v1/sessions)")
    parser.add_argument("--port", type=int, default=0, help="the local port on 127.0.0.1 (default: one the OS picks)")
    add_api_arguments(parser)
    parser.set_defaults(func=_cmd_adb)
