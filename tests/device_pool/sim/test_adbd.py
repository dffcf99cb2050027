"""The adbd wire protocol, byte by byte, from a raw host socket (what clients rely on: docs/adb.md)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from device_pool.sim.adbd import AdbDaemon
from device_pool.sim.phone import PhoneConfig, VirtualPhone
from device_pool.sim.transport import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_WRTE,
    HEADER_SIZE,
    Message,
    checksum,
    encode,
    read_message,
)


class RawHost:
    """A minimal adb host speaking the transport directly, to observe exactly what the device sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.next_id = 100

    async def send(self, msg: Message) -> None:
        self.writer.write(encode(msg, with_checksum=True))
        await self.writer.drain()

    async def recv(self, timeout: float = 5.0) -> Message:
        return await asyncio.wait_for(read_message(self.reader), timeout)

    async def connect(self, version: int = 0x01000001, maxdata: int = 1 << 20) -> Message:
        await self.send(Message(A_CNXN, version, maxdata, b"host::features=shell_v2\0"))
        return await self.recv()

    async def open(self, service: str) -> tuple[int, Message]:
        self.next_id += 1
        await self.send(Message(A_OPEN, self.next_id, 0, service.encode() + b"\0"))
        return self.next_id, await self.recv()

    async def collect(self, local: int, remote: int) -> bytes:
        """Read a stream to its CLSE, acknowledging every WRTE as a host does."""
        out = bytearray()
        while True:
            msg = await self.recv()
            if msg.command == A_WRTE:
                assert msg.arg1 == local
                out += msg.data
                await self.send(Message(A_OKAY, local, remote))
            elif msg.command == A_CLSE:
                return bytes(out)


@asynccontextmanager
async def sim_adb_pair(tmp_path: Path, **daemon_kw) -> AsyncIterator[tuple[RawHost, AdbDaemon]]:
    phone = VirtualPhone(tmp_path / "phone", PhoneConfig(width=720, height=1600, density=320))
    daemon = AdbDaemon(phone, "127.0.0.1", 0, **daemon_kw)
    await daemon.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
    try:
        yield RawHost(reader, writer), daemon
    finally:
        writer.close()
        await daemon.stop()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_handshake_banner_advertises_only_implemented_features(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _daemon):
            reply = await host.connect()
            assert reply.command == A_CNXN and reply.arg0 == 0x01000001
            banner = reply.data.decode()
            assert banner.startswith("device::") and "ro.product.model=" in banner
            features = banner.split("features=")[1].split(",")
            assert "shell_v2" in features
            for never in ("delayed_ack", "sendrecv_v2_zstd", "abb_exec", "cmd"):
                assert never not in features
            assert len(reply.data) < 4096

    run(body())


def test_unknown_service_is_refused_with_clse(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.connect()
            local, reply = await host.open("no-such-service:")
            assert (reply.command, reply.arg0, reply.arg1) == (A_CLSE, 0, local)

    run(body())


def test_shell_v2_sends_exit_packet_before_close(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.connect()
            local, okay = await host.open("shell,v2,TERM=xterm,raw:echo hi")
            assert okay.command == A_OKAY and okay.arg1 == local
            data = await host.collect(local, okay.arg0)
            assert data == b"\x01" + struct.pack("<I", 3) + b"hi\n" + b"\x03" + struct.pack("<I", 1) + b"\x00"

    run(body())


def test_device_waits_for_okay_before_the_next_write(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.connect(maxdata=4096)
            local, okay = await host.open("exec:screencap")
            first = await host.recv()
            assert first.command == A_WRTE and len(first.data) <= 4096
            # No OKAY from us yet: the device must not send another WRTE.
            try:
                extra = await host.recv(timeout=0.5)
            except TimeoutError:
                extra = None
            assert extra is None
            await host.send(Message(A_OKAY, local, okay.arg0))
            second = await host.recv()
            assert second.command == A_WRTE and len(second.data) <= 4096

    run(body())


def test_old_hosts_get_checksums(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.send(Message(A_CNXN, 0x01000000, 1 << 20, b"host::\0"))
            raw = await host.reader.readexactly(HEADER_SIZE)
            command, _a0, _a1, length, check, _magic = struct.unpack("<6I", raw)
            data = await host.reader.readexactly(length)
            assert command == A_CNXN and check == checksum(data)

    run(body())


def test_auth_accepts_any_signature(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path, require_auth=True) as (host, _):
            challenge = await host.connect()
            assert challenge.command == A_AUTH and challenge.arg0 == 1 and len(challenge.data) == 20
            await host.send(Message(A_AUTH, 2, 0, b"\x00" * 256))
            reply = await host.recv()
            assert reply.command == A_CNXN

    run(body())


def test_host_close_mid_command_gets_no_reply_and_connection_survives(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.connect()
            local, okay = await host.open("shell:sleep 1")
            await host.send(Message(A_CLSE, local, okay.arg0))
            local2, okay2 = await host.open("shell:echo still-here")
            data = await host.collect(local2, okay2.arg0)
            assert data == b"still-here\n"

    run(body())


def test_garbage_drops_the_connection(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            host.writer.write(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 10)
            await host.writer.drain()
            assert await asyncio.wait_for(host.reader.read(), 5) == b""

    run(body())


def test_interactive_pty_shell_runs_lines(tmp_path):
    async def body():
        async with sim_adb_pair(tmp_path) as (host, _):
            await host.connect()
            local, okay = await host.open("shell:")
            prompt = await host.recv()
            assert prompt.data.endswith(b"$ ")
            await host.send(Message(A_OKAY, local, okay.arg0))
            await host.send(Message(A_WRTE, local, okay.arg0, b"echo pty-ok\rexit\r"))
            data = await host.collect(local, okay.arg0)
            assert b"pty-ok\r\n" in data

    run(body())
