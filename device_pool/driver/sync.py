"""File transfer over the phone's ``sync:`` service (RECV to pull, SEND to push), on an open stream."""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from device_pool.driver.errors import ProtocolViolation, RemoteFileError
from device_pool.driver.wire import SYNC_MAX_DATA, AdbConnection

# LST2's answer after its 8-byte header (id, error): dev ino mode nlink uid gid size atime mtime ctime.
_LST2_REST = struct.Struct("<QQIIIIQqqq")


@dataclass(frozen=True)
class FileStat:
    """What the phone says of one path, not following a final symbolic link (``lstat``)."""

    error: int  # errno; 0 when the path exists
    mode: int  # st_mode, type bits included
    size: int


async def lstat(conn: AdbConnection, path: str) -> FileStat:
    """One path's ``lstat`` through LST2 (the phone's feature ``stat_v2``)."""
    await conn.sync_request(b"LST2", path)
    ident, error = await conn.sync_header()
    if ident != b"LST2":
        raise ProtocolViolation(f"unexpected sync reply {ident!r} to LST2")
    _dev, _ino, mode, _nlink, _uid, _gid, size, *_times = _LST2_REST.unpack(
        await conn.read_exactly(_LST2_REST.size)
    )
    return FileStat(error, mode, size)


async def recv(conn: AdbConnection, path: str) -> bytes:
    """Read one file from the phone; RemoteFileError when the phone answers FAIL."""
    data = bytearray()
    async for chunk in recv_chunks(conn, path):
        data += chunk
    return bytes(data)


async def recv_chunks(conn: AdbConnection, path: str) -> AsyncGenerator[bytes, None]:
    """One file from the phone as its DATA packets arrive (each at most ``SYNC_MAX_DATA`` bytes), so
    a caller that streams it on holds one packet at a time; RemoteFileError when the phone answers
    FAIL (before the first packet for a file it cannot read)."""
    await conn.sync_request(b"RECV", path)
    while True:
        ident, size = await conn.sync_header()
        if ident == b"DATA":
            if size > SYNC_MAX_DATA:
                raise ProtocolViolation(f"sync DATA chunk of {size} bytes (max {SYNC_MAX_DATA})")
            yield await conn.read_exactly(size)
        elif ident == b"DONE":
            return
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
