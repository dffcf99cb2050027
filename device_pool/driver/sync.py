"""File transfer over the phone's ``sync:`` service (RECV to pull, SEND to push), on an open stream."""

from __future__ import annotations

import struct
import time

from device_pool.driver.errors import ProtocolViolation, RemoteFileError
from device_pool.driver.wire import SYNC_MAX_DATA, AdbConnection


async def recv(conn: AdbConnection, path: str) -> bytes:
    """Read one file from the phone; RemoteFileError when the phone answers FAIL."""
    await conn.sync_request(b"RECV", path)
    data = bytearray()
    while True:
        ident, size = await conn.sync_header()
        if ident == b"DATA":
            if size > SYNC_MAX_DATA:
                raise ProtocolViolation(f"sync DATA chunk of {size} bytes (max {SYNC_MAX_DATA})")
            data += await conn.read_exactly(size)
        elif ident == b"DONE":
            return bytes(data)
        elif ident == b"FAIL":
            raise RemoteFileError((await conn.read_exactly(size)).decode("utf-8", errors="replace"))
        else:
            raise ProtocolViolation(f"unexpected sync reply {ident!r} to RECV")


async def send(conn: AdbConnection, data: bytes, path: str, mode: int, mtime: int | None = None) -> None:
    """Write one file to the phone (parents created by the phone); RemoteFileError on FAIL."""
    # The mode travels as decimal after a comma, and must include the file-type bits.
    await conn.sync_request(b"SEND", f"{path},{0o100000 | (mode & 0o7777)}")
    view = memoryview(data)
    for start in range(0, len(view), SYNC_MAX_DATA):
        chunk = view[start : start + SYNC_MAX_DATA]
        await conn.write(b"DATA" + struct.pack("<I", len(chunk)) + bytes(chunk))
    stamp = int(time.time()) if mtime is None else mtime
    await conn.write(b"DONE" + struct.pack("<I", stamp))
    ident, size = await conn.sync_header()
    if ident == b"OKAY":
        return
    if ident == b"FAIL":
        raise RemoteFileError((await conn.read_exactly(size)).decode("utf-8", errors="replace"))
    raise ProtocolViolation(f"unexpected sync reply {ident!r} to SEND")


async def quit_session(conn: AdbConnection) -> None:
    """End the sync session politely; best effort, since the phone also accepts a bare close."""
    try:
        await conn.write(b"QUIT" + struct.pack("<I", 0))
    except ConnectionError:
        pass
