"""adbd's services, the ones a host can OPEN on the virtual phone: shell (raw and v2), exec, sync, root.

Shell protocol v2 frames data as ``id:u8 len:u32 payload`` with ids 0 stdin, 1 stdout, 2 stderr,
3 exit, 4 close-stdin, 5 window size; the exit packet always precedes CLSE.
"""

from __future__ import annotations

import asyncio
import functools
import struct
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from device_pool.sim import localsocket, logcat, scrcpy_server, screenrecord
from device_pool.sim.phone import VirtualPhone
from device_pool.sim.shell import ShellResult, run_shell
from device_pool.sim.stream import Stream
from device_pool.sim.sync import serve_sync

Service = Callable[[Stream], Awaitable[None]]

ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW = range(6)
_PACKET = struct.Struct("<BI")


def v2_packet(kind: int, data: bytes) -> bytes:
    return _PACKET.pack(kind, len(data)) + data


def open_service(name: str, phone: VirtualPhone, executor: Executor | None) -> Service | None:
    """The coroutine serving ``name``, or None for a service this phone does not offer."""
    if name.startswith("shell"):
        head, sep, command = name.partition(":")
        if not sep:
            return None
        args = head.split(",")[1:]
        v2 = "v2" in args
        # Default is a pty for an empty command and raw otherwise, unless the host says.
        pty = "pty" in args or ("raw" not in args and not command)
        if pty and not command:
            return functools.partial(_interactive, phone, executor, v2)
        return _command_service(phone, executor, command, v2)
    if name.startswith("exec:"):
        return _command_service(phone, executor, name[len("exec:") :], False)
    if name == "sync:":
        return functools.partial(serve_sync, phone, executor)
    if name == "root:":
        return _already_root
    if name.startswith("localabstract:"):
        return localsocket.serve(phone, name[len("localabstract:") :])
    return None


def _command_service(phone: VirtualPhone, executor: Executor | None, command: str, v2: bool) -> Service:
    # A recording and a following logcat stream until the host closes them; every other command
    # runs to its end first.
    argv = screenrecord.streaming_argv(command)
    if argv is not None:
        return functools.partial(screenrecord.serve, phone, executor, argv, v2)
    server = scrcpy_server.server_argv(command)
    if server is not None:
        return functools.partial(scrcpy_server.serve, phone, executor, *server, v2)
    argv = logcat.streaming_argv(command)
    if argv is not None:
        return functools.partial(logcat.serve, phone.log, argv, v2)
    return functools.partial(_run_command, phone, executor, command, v2)


async def _execute(phone: VirtualPhone, executor: Executor | None, command: str) -> ShellResult:
    # Commands touch files and encode images: keep them off the event loop.
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, run_shell, phone, command, b"")


async def _run_command(
    phone: VirtualPhone, executor: Executor | None, command: str, v2: bool, stream: Stream
) -> None:
    # Input is acknowledged and dropped: the virtual phone's commands do not read stdin, and an
    # unacknowledged WRTE would stall the client.
    drain = asyncio.create_task(stream.drain_input())
    try:
        result = await _execute(phone, executor, command)
        if v2:
            payload = b"".join(v2_packet(kind, data) for kind, data in result.output if data)
            payload += v2_packet(ID_EXIT, bytes([result.exit_code & 0xFF]))
        else:
            payload = b"".join(data for _kind, data in result.output)
        if payload:
            await stream.write(payload)
    finally:
        drain.cancel()


async def _already_root(stream: Stream) -> None:
    await stream.write(b"adbd is already running as root\n")


class _V2Reader:
    """Splits a host's v2 byte stream back into packets (they may span WRTEs)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        packets = []
        while len(self._buf) >= _PACKET.size:
            kind, length = _PACKET.unpack_from(self._buf)
            if len(self._buf) < _PACKET.size + length:
                break
            packets.append((kind, bytes(self._buf[_PACKET.size : _PACKET.size + length])))
            del self._buf[: _PACKET.size + length]
        return packets


async def _interactive(phone: VirtualPhone, executor: Executor | None, v2: bool, stream: Stream) -> None:
    """A pty shell: echo what is typed, run each line, print a prompt; `exit` or EOF ends it."""
    prompt = f"{phone.props.get('ro.product.device', 'sim')}:/ $ ".encode()
    reader = _V2Reader()
    line = bytearray()
    exit_code = 0

    async def out(data: bytes) -> None:
        await stream.write(v2_packet(ID_STDOUT, data) if v2 else data)

    await out(prompt)
    while True:
        chunk = await stream.read()
        if chunk is None:
            return
        if v2:
            packets = reader.feed(chunk)
            data = b"".join(d for kind, d in packets if kind == ID_STDIN)
            if any(kind == ID_CLOSE_STDIN for kind, _ in packets):
                break
        else:
            data = chunk
        for byte in data:
            if byte in (0x0D, 0x0A):
                await out(b"\r\n")
                text = line.decode("utf-8", "replace").strip()
                line.clear()
                if text in ("exit", "logout"):
                    if v2:
                        await stream.write(v2_packet(ID_EXIT, bytes([exit_code])))
                    return
                if text:
                    result = await _execute(phone, executor, text)
                    exit_code = result.exit_code & 0xFF
                    body = b"".join(d for _k, d in result.output).replace(b"\n", b"\r\n")
                    if body:
                        await out(body)
                await out(prompt)
            elif byte in (0x7F, 0x08):
                if line:
                    line.pop()
                    await out(b"\b \b")
            elif byte == 0x04 and not line:  # Ctrl-D on an empty line
                return
            else:
                line.append(byte)
                await out(bytes([byte]))
    if v2:
        await stream.write(v2_packet(ID_EXIT, bytes([exit_code])))
