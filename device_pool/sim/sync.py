"""The sync service (``adb push/pull/ls``, adbutils' sync): requests over one byte stream.

A byte stream, not message-aligned: hosts pack DATA headers across WRTEs, so everything is read
through a buffer. Paths map into the phone's file system root.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat as stat_mod
import struct
from concurrent.futures import Executor
from pathlib import Path

from device_pool.sim.phone import VirtualPhone
from device_pool.sim.stream import Stream

MAX_PATH = 1024
MAX_CHUNK = 64 * 1024  # RECV DATA above 64 KiB makes the host fail the pull
_REQ = struct.Struct("<4sI")
_STAT_V1 = struct.Struct("<4sIII")  # id mode size mtime
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")  # id error dev ino mode nlink uid gid size atime mtime ctime
_DENT_V1 = struct.Struct("<4sIIII")  # id mode size mtime namelen
_DENT_V2 = struct.Struct("<4sIQQIIIIQqqqI")


class _SyncClosed(Exception):
    pass


class _Buffered:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = await self.stream.read()
            if chunk is None:
                raise _SyncClosed()
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _fail(message: str) -> bytes:
    data = message.encode()
    return _REQ.pack(b"FAIL", len(data)) + data


def _v1_stat(path: Path) -> bytes:
    try:
        st = path.stat()
    except OSError:
        return _STAT_V1.pack(b"STAT", 0, 0, 0)
    return _STAT_V1.pack(b"STAT", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime))


def _v2_fields(st: os.stat_result) -> tuple:
    return (
        st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_size,
        int(st.st_atime), int(st.st_mtime), int(st.st_ctime),
    )  # fmt: skip


def _v2_stat(kind: bytes, path: Path) -> bytes:
    try:
        st = path.lstat() if kind == b"LST2" else path.stat()
    except OSError as exc:
        return _STAT_V2.pack(kind, exc.errno or errno.ENOENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return _STAT_V2.pack(kind, 0, *_v2_fields(st))


def _listing(path: Path, v2: bool) -> bytes:
    out = bytearray()
    try:
        names = [".", "..", *sorted(os.listdir(path))]
    except OSError:
        names = []
    for name in names:
        try:
            st = (path / name).lstat()
        except OSError:
            continue
        raw = name.encode()
        if v2:
            out += _DENT_V2.pack(b"DNT2", 0, *_v2_fields(st), len(raw)) + raw
        else:
            out += (
                _DENT_V1.pack(b"DENT", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw)) + raw
            )
    # DONE must be as long as a full entry, or `adb ls` and `adb pull DIR` hang (docs/adb.md, "Sync (file transfer)").
    out += _DENT_V2.pack(b"DONE", *([0] * 12)) if v2 else _DENT_V1.pack(b"DONE", 0, 0, 0, 0)
    return bytes(out)


async def serve_sync(phone: VirtualPhone, executor: Executor | None, stream: Stream) -> None:
    """Answer sync requests until QUIT or until the host closes the stream."""
    buffered = _Buffered(stream)
    loop = asyncio.get_running_loop()
    try:
        while True:
            kind, length = _REQ.unpack(await buffered.exactly(8))
            if kind == b"QUIT":
                return
            if length > MAX_PATH:
                await stream.write(_fail("path too long"))
                return
            arg = (await buffered.exactly(length)).decode("utf-8", "surrogateescape")
            if kind == b"STAT":
                await stream.write(_v1_stat(phone.host_path(arg)))
            elif kind in (b"STA2", b"LST2"):
                await stream.write(_v2_stat(kind, phone.host_path(arg)))
            elif kind in (b"LIST", b"LIS2"):
                listing = await loop.run_in_executor(
                    executor, _listing, phone.host_path(arg), kind == b"LIS2"
                )
                await stream.write(listing)
            elif kind == b"RECV":
                await _send_file(phone, executor, stream, arg)
            elif kind == b"SEND":
                await _receive_file(phone, executor, buffered, arg)
            elif kind == b"SND2":
                mode_flags = await buffered.exactly(12)
                _id, mode, flags = struct.unpack("<4sII", mode_flags)
                if flags:
                    await _discard_upload(buffered)
                    await stream.write(_fail(f"unsupported sync flags {flags:#x}"))
                    continue
                await _receive_file(phone, executor, buffered, f"{arg},{mode}")
            else:
                await stream.write(_fail(f"unknown sync request {kind!r}"))
                return
    except _SyncClosed:
        return


async def _send_file(
    phone: VirtualPhone, executor: Executor | None, stream: Stream, device_path: str
) -> None:
    path = phone.host_path(device_path)
    loop = asyncio.get_running_loop()
    try:
        handle = await loop.run_in_executor(executor, open, path, "rb")
    except OSError as exc:
        await stream.write(_fail(f"open failed: {os.strerror(exc.errno or errno.EIO)}"))
        return
    # DATA packets (and finally DONE) are packed into WRTEs as large as the stream allows: each WRTE
    # costs a round trip to the host's OKAY, and a DONE sent alone would cost one more.
    pending = bytearray()
    try:
        while True:
            chunk = await loop.run_in_executor(executor, handle.read, MAX_CHUNK)
            if not chunk:
                break
            packet = _REQ.pack(b"DATA", len(chunk)) + chunk
            if pending and len(pending) + len(packet) > stream.max_data:
                await stream.write(bytes(pending))
                pending.clear()
            pending += packet
    finally:
        handle.close()
    pending += _REQ.pack(b"DONE", 0)
    await stream.write(bytes(pending))


async def _discard_upload(buffered: _Buffered) -> None:
    while True:
        kind, length = _REQ.unpack(await buffered.exactly(8))
        if kind != b"DATA":
            return
        await buffered.exactly(length)


async def _receive_file(
    phone: VirtualPhone, executor: Executor | None, buffered: _Buffered, spec: str
) -> None:
    """SEND "PATH,MODE": DATA chunks then DONE mtime; answered once, after DONE."""
    device_path, _, mode_text = spec.rpartition(",")
    if not device_path:
        device_path, mode_text = spec, "33188"
    try:
        mode = int(mode_text)
    except ValueError:
        mode = 0o100644
    stream = buffered.stream
    if phone.is_read_only(device_path):
        await _discard_upload(buffered)
        await stream.write(_fail("couldn't create file: Read-only file system"))
        return
    path = phone.host_path(device_path)
    loop = asyncio.get_running_loop()
    tmp = path.with_name(f".{path.name}.sync-tmp")
    try:
        # fixed_push_mkdir: the device creates missing parent directories.
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(tmp, "wb")  # noqa: SIM115 - closed below after the upload
    except OSError as exc:
        await _discard_upload(buffered)
        await stream.write(_fail(f"couldn't create file: {os.strerror(exc.errno or errno.EIO)}"))
        return
    mtime = 0
    try:
        while True:
            kind, value = _REQ.unpack(await buffered.exactly(8))
            if kind == b"DATA":
                chunk = await buffered.exactly(value)
                await loop.run_in_executor(executor, handle.write, chunk)
            elif kind == b"DONE":
                mtime = value
                break
            else:
                raise _SyncClosed()
    except BaseException:
        handle.close()
        tmp.unlink(missing_ok=True)
        raise
    handle.close()
    if stat_mod.S_ISREG(mode) or not stat_mod.S_IFMT(mode):
        os.chmod(tmp, (mode & 0o777) | 0o600)
    os.replace(tmp, path)
    if mtime:
        os.utime(path, (mtime, mtime))
    await stream.write(_REQ.pack(b"OKAY", 0))
