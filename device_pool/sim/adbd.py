"""adbd for the virtual phone: an asyncio server speaking the adb transport over TCP.

One connection per host adb server (or adbutils socket); each holds its own stream table, so
concurrent streams and several hosts never see each other's bytes. Services are dispatched by
name to the shell (``shell:``, ``exec:``), the file service (``sync:``) and a few small ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from concurrent.futures import Executor

from device_pool.sim.adbd_services import open_service
from device_pool.sim.phone import VirtualPhone
from device_pool.sim.stream import Stream, StreamClosed
from device_pool.sim.transport import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_WRTE,
    AUTH_TOKEN,
    MAX_PAYLOAD,
    VERSION_SKIP_CHECKSUM,
    Message,
    ProtocolViolation,
    device_banner,
    encode,
    read_message,
)

logger = logging.getLogger(__name__)


class AdbDaemon:
    """Serves one virtual phone on ``host:port``."""

    def __init__(
        self,
        phone: VirtualPhone,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        executor: Executor | None = None,
        require_auth: bool = False,
    ) -> None:
        self.phone = phone
        self.host = host
        self.port = port
        self.executor = executor
        # With auth on, any signature or public key is accepted, as a phone that trusts every host.
        self.require_auth = require_auth
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("adbd listening", extra={"serial": self.serial})

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            await conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Small OKAYs and WRTEs wait on each other (one WRTE in flight); Nagle would hold each
            # one back for the peer's delayed ACK, ~40 ms a round.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(self, reader, writer)
        self._connections.add(conn)
        try:
            await conn.run()
        finally:
            self._connections.discard(conn)


class _Connection:
    def __init__(self, daemon: AdbDaemon, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.daemon = daemon
        self.reader = reader
        self.writer = writer
        self.max_data = MAX_PAYLOAD
        self.checksums = False
        self.online = False
        self.streams: dict[int, Stream] = {}
        self.tasks: set[asyncio.Task] = set()
        self._next_id = 1
        self._peer = writer.get_extra_info("peername")

    async def send(self, msg: Message) -> None:
        if self.writer.is_closing():
            raise StreamClosed()
        # One write() call per message keeps messages whole: the loop never interleaves them.
        self.writer.write(encode(msg, self.checksums))
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            raise StreamClosed() from exc

    async def run(self) -> None:
        try:
            while True:
                msg = await read_message(self.reader)
                await self._dispatch(msg)
        except (asyncio.IncompleteReadError, ConnectionError, StreamClosed):
            pass
        except ProtocolViolation as exc:
            logger.warning("dropping connection: %s", exc, extra={"serial": self.daemon.serial})
        finally:
            await self.abort()

    async def abort(self) -> None:
        for stream in self.streams.values():
            stream.on_close()
        self.streams.clear()
        for task in list(self.tasks):
            task.cancel()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def _dispatch(self, msg: Message) -> None:
        if msg.command == A_CNXN:
            await self._on_connect(msg)
        elif msg.command == A_AUTH:
            # Signature (2) or public key (3): either way this phone trusts the host.
            if msg.arg0 in (2, 3):
                await self._go_online()
        elif not self.online:
            return  # nothing but the handshake before CNXN; a real adbd ignores it too
        elif msg.command == A_OPEN:
            await self._on_open(msg)
        elif msg.command == A_WRTE:
            stream = self.streams.get(msg.arg1)
            if stream is not None:
                stream.on_write(msg.data)
        elif msg.command == A_OKAY:
            stream = self.streams.get(msg.arg1)
            if stream is not None:
                stream.on_okay()
        elif msg.command == A_CLSE:
            # The host closed its end (or a killed client): stop the service, don't reply.
            stream = self.streams.pop(msg.arg1, None)
            if stream is not None:
                stream.on_close()

    async def _on_connect(self, msg: Message) -> None:
        host_version, host_max = msg.arg0, msg.arg1
        self.checksums = host_version < VERSION_SKIP_CHECKSUM
        self.max_data = max(4096, min(host_max or MAX_PAYLOAD, MAX_PAYLOAD))
        if self.daemon.require_auth and not self.online:
            await self.send(Message(A_AUTH, AUTH_TOKEN, 0, os.urandom(20)))
            return
        await self._go_online()

    async def _go_online(self) -> None:
        self.online = True
        banner = device_banner(self.daemon.phone.props)
        await self.send(Message(A_CNXN, VERSION_SKIP_CHECKSUM, MAX_PAYLOAD, banner))

    async def _on_open(self, msg: Message) -> None:
        remote_id = msg.arg0
        name = msg.data.rstrip(b"\0").decode("utf-8", "replace")
        service = open_service(name, self.daemon.phone, self.daemon.executor)
        if service is None:
            logger.debug("unknown service %r", name)
            await self.send(Message(A_CLSE, 0, remote_id))
            return
        local_id = self._next_id
        self._next_id += 1
        stream = Stream(local_id, remote_id, self.send, self.max_data)
        self.streams[local_id] = stream
        await self.send(Message(A_OKAY, local_id, remote_id))
        task = asyncio.create_task(self._serve(stream, service, name))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, stream: Stream, service, name: str) -> None:
        try:
            await service(stream)
        except StreamClosed:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("service %r failed", name, extra={"serial": self.daemon.serial})
        finally:
            self.streams.pop(stream.local_id, None)
            with contextlib.suppress(StreamClosed, ConnectionError):
                await stream.close()
