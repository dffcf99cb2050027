"""The adb server's smart-socket framing: one TCP connection, hex-length requests, OKAY/FAIL replies.

A client sends ``%04x`` + request; the server answers ``OKAY`` (some host services then send a
``%04x``-prefixed payload) or ``FAIL`` + ``%04x`` + message. After ``host:transport:SERIAL`` +
``OKAY`` the same socket carries one device service (``shell,v2,raw:…``, ``exec:…``, ``sync:``),
whose bytes pass through unchanged until either side closes. Errors here are plain Python
exceptions; ``errors.adb_errors`` translates them at the driver's boundary.
"""

from __future__ import annotations

import asyncio
import logging
import struct

from device_pool.driver.errors import ProtocolViolation, ServerRefused, StreamClosed

logger = logging.getLogger(__name__)

# Read in large chunks: a raw 1080x2400 frame is 10 MB, and 64 KiB reads cost ~160 wakeups.
_READ_CHUNK = 1 << 20

SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4

# Sync requests carry their path in one packet; adbd refuses longer ones.
SYNC_MAX_PATH = 1024
# RECV/SEND DATA chunks must not exceed 64 KiB (the phone rejects larger ones).
SYNC_MAX_DATA = 64 * 1024


class AdbConnection:
    """One socket to the adb server; closed by ``close()`` or ``async with``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> AdbConnection:
        """Open a TCP connection to the adb server (raises OSError when nothing listens)."""
        reader, writer = await asyncio.open_connection(host, port, limit=_READ_CHUNK)
        return cls(reader, writer)

    async def __aenter__(self) -> AdbConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close without waiting: safe inside cancellation, and the server then closes the device stream."""
        self._writer.close()

    # --- smart-socket requests -------------------------------------------------------------------

    async def request(self, service: str) -> None:
        """Send one request and consume its OKAY; raise ServerRefused on FAIL."""
        payload = service.encode("utf-8")
        if len(payload) > 0xFFFF:
            raise ProtocolViolation(f"request longer than 65535 bytes ({len(payload)})")
        self._writer.write(b"%04x" % len(payload) + payload)
        await self._writer.drain()
        await self.read_status()

    async def read_status(self) -> None:
        """Read OKAY, or FAIL with its message (raised as ServerRefused)."""
        status = await self._reader.readexactly(4)
        if status == b"OKAY":
            return
        if status == b"FAIL":
            raise ServerRefused(await self.read_hex_block())
        raise ProtocolViolation(f"expected OKAY or FAIL, got {status!r}")

    async def read_hex_block(self) -> str:
        """Read a ``%04x``-prefixed payload (host service answers, FAIL messages)."""
        size_hex = await self._reader.readexactly(4)
        try:
            size = int(size_hex, 16)
        except ValueError:
            raise ProtocolViolation(f"bad length prefix {size_hex!r}") from None
        return (await self._reader.readexactly(size)).decode("utf-8", errors="replace")

    # --- raw stream I/O (after a device service was opened) --------------------------------------

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def write_nowait(self, data: bytes) -> None:
        """Queue ``data`` without waiting for the socket to drain (a few bytes from sync code)."""
        self._writer.write(data)

    async def read_exactly(self, size: int) -> bytes:
        return await self._reader.readexactly(size)

    async def read_some(self) -> bytes:
        """What has arrived (waiting for at least a byte); b"" once the device closed the stream."""
        return await self._reader.read(_READ_CHUNK)

    async def read_to_end(self) -> bytes:
        """Everything the device sends until it closes the stream."""
        chunks = bytearray()
        while True:
            chunk = await self._reader.read(_READ_CHUNK)
            if not chunk:
                return bytes(chunks)
            chunks += chunk

    # --- shell protocol v2 -----------------------------------------------------------------------

    async def send_shell_packet(self, kind: int, data: bytes = b"") -> None:
        await self.write(struct.pack("<BI", kind, len(data)) + data)

    async def read_shell_v2(self) -> tuple[bytes, bytes, int]:
        """Collect stdout, stderr and the exit code; StreamClosed if the stream ends without an exit packet."""
        stdout, stderr = bytearray(), bytearray()
        while True:
            try:
                header = await self._reader.readexactly(5)
            except asyncio.IncompleteReadError as exc:
                raise StreamClosed("stream closed before the exit status", bytes(stdout + stderr)) from exc
            kind, size = struct.unpack("<BI", header)
            try:
                data = await self._reader.readexactly(size)
            except asyncio.IncompleteReadError as exc:
                raise StreamClosed("stream closed inside a shell packet", bytes(stdout + stderr)) from exc
            if kind == SHELL_STDOUT:
                stdout += data
            elif kind == SHELL_STDERR:
                stderr += data
            elif kind == SHELL_EXIT:
                if size != 1:
                    raise ProtocolViolation(f"exit packet of {size} bytes")
                return bytes(stdout), bytes(stderr), data[0]
            else:
                # Window-size and stdin packets only travel host → device; anything else is noise
                # we must not silently accept, or stdout and stderr could be misattributed.
                raise ProtocolViolation(f"unexpected shell packet id {kind}")

    # --- sync protocol ---------------------------------------------------------------------------

    async def sync_request(self, ident: bytes, path: str) -> None:
        encoded = path.encode("utf-8")
        if len(encoded) > SYNC_MAX_PATH:
            raise ProtocolViolation(f"sync path longer than {SYNC_MAX_PATH} bytes")
        await self.write(ident + struct.pack("<I", len(encoded)) + encoded)

    async def sync_header(self) -> tuple[bytes, int]:
        header = await self._reader.readexactly(8)
        return header[:4], struct.unpack("<I", header[4:])[0]
