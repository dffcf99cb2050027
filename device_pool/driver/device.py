"""AdbDevice: one phone behind an adb server, as the agent loop and the pool use it (async, typed errors)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import secrets
import shlex
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager, closing
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from device_pool.driver import dumpsys, sync
from device_pool.driver import screenshot as frames
from device_pool.driver import shell as shell_proto
from device_pool.driver.adb_server import DEFAULT_HOST, DEFAULT_PORT, AdbServerClient, parse_features
from device_pool.driver.apps import AppCatalog
from device_pool.driver.device_ui import ERROR_LINE, DeviceUi
from device_pool.driver.errors import ProtocolViolation, ServerRefused, StreamClosed, adb_errors
from device_pool.driver.keys import keycode
from device_pool.driver.screenshot import RawFrame
from device_pool.driver.settle import SettleResult, wait_for_settle
from device_pool.driver.shell import ShellOutput
from device_pool.driver.text_input import TextEntry
from device_pool.driver.wire import AdbConnection
from device_pool.errors import CommandFailed, DeviceOffline, DeviceTimeout

logger = logging.getLogger(__name__)

# Set while a caller types a secret (the agent's Type_Secret): the debug log of shell commands then
# shows "[secret input]" instead of the command line, which holds the text typed.
SECRET_INPUT: contextvars.ContextVar[bool] = contextvars.ContextVar("secret_input", default=False)


@dataclass(frozen=True)
class DeviceTimeouts:
    """Default deadlines in seconds, per kind of call; every method also takes ``timeout=``."""

    command: float = 10.0
    connect: float = 30.0
    screenshot: float = 20.0
    transfer: float = 60.0
    ui_dump: float = 30.0


def _px(value: float) -> int:
    if value < 0:
        raise ValueError(f"negative screen coordinate {value}")
    return round(value)


class AdbDevice(DeviceUi):
    """One phone (serial ``host:port`` for TCP phones) reached through an adb server.

    Every method is a coroutine with a deadline (``timeout=`` or ``timeouts``) and raises only
    ``device_pool.errors.DeviceError`` subclasses, carrying the serial, command and output; a
    ``ValueError`` means an argument that can never work and is raised before anything is sent.
    Each call opens its own stream, so calls may run concurrently; cancelling one closes its stream.
    """

    def __init__(
        self,
        serial: str,
        *,
        server: AdbServerClient | None = None,
        adb_host: str = DEFAULT_HOST,
        adb_port: int = DEFAULT_PORT,
        timeouts: DeviceTimeouts | None = None,
        apps: AppCatalog | None = None,
        shell_protocol: Literal["auto", "v2", "legacy"] = "auto",
        use_adb_keyboard: bool | None = None,
    ) -> None:
        self.serial = serial
        self.server = server or AdbServerClient(adb_host, adb_port)
        self.timeouts = timeouts or DeviceTimeouts()
        self.apps = apps or AppCatalog()
        self.shell_protocol = shell_protocol
        self._features: frozenset[str] | None = None
        self.text = TextEntry(self, use_adb_keyboard=use_adb_keyboard)

    def __repr__(self) -> str:
        return f"AdbDevice({self.serial!r}, server={self.server!r})"

    @asynccontextmanager
    async def _stream(self, service: str, command: str, timeout: float) -> AsyncIterator[AdbConnection]:
        """Open ``service`` on this phone; the body runs under the deadline and the error mapping."""
        with adb_errors(self.serial, command, timeout=timeout):
            async with asyncio.timeout(timeout):
                with closing(await self._open(service)) as conn:
                    yield conn

    async def _open(self, service: str) -> AdbConnection:
        try:
            return await self.server.open_service(self.serial, service)
        except ServerRefused as exc:
            # The server says "closed" both when the phone refuses a service and when the
            # phone vanished while the stream opened; only the second is worth a retry.
            if str(exc).strip() == "closed" and not await self._online():
                raise StreamClosed("the phone went away while the stream opened") from exc
            raise

    async def _online(self) -> bool:
        try:
            return (await self.server.host_query(f"host-serial:{self.serial}:get-state")).strip() == "device"
        except (OSError, EOFError, ServerRefused, ProtocolViolation):
            return False

    def _failed(self, command: str, what: str, out: ShellOutput | None = None) -> CommandFailed:
        output = out.output if out is not None else ""
        detail = f": {output.strip()[:500]}" if output.strip() else ""
        return CommandFailed(
            f"{self.serial}: `{command}` {what}{detail}",
            device_id=self.serial,
            command=command,
            exit_code=out.exit_code if out is not None else None,
            output=output,
        )

    # --- connection ------------------------------------------------------------------------------

    async def connect(self, *, timeout: float | None = None) -> None:
        """``adb connect`` (TCP serials) and wait until the server lists the phone as ``device``.

        Raises DeviceOffline when the phone is not online by the deadline.
        """
        self._features = None
        self.text.forget()
        await self.server.bring_online(
            self.serial, timeout=self.timeouts.connect if timeout is None else timeout
        )

    async def disconnect(self, *, timeout: float | None = None) -> None:
        """``adb disconnect`` this phone; a phone the server does not know is already disconnected."""
        try:
            await self.server.disconnect_device(self.serial, timeout=timeout)
        except DeviceOffline:
            pass

    async def state(self, *, timeout: float | None = None) -> str:
        """The state the adb server reports (``device``, ``offline`` …); DeviceOffline if unknown to it."""
        return await self.server.state(self.serial, timeout=timeout)

    async def features(self, *, timeout: float | None = None) -> frozenset[str]:
        """Features shared by the phone and the server, cached until the next ``connect()``."""
        if self._features is None:
            self._features = await self.server.features(self.serial, timeout=timeout)
        return self._features

    # --- shell, exec, files ----------------------------------------------------------------------

    async def _uses_shell_v2(self, command: str, limit: float) -> bool:
        if self.shell_protocol != "auto":
            return self.shell_protocol == "v2"
        if self._features is None:
            # Looked up under the command's own name, so a failure here names what the caller ran.
            with adb_errors(self.serial, command, timeout=limit):
                async with asyncio.timeout(limit):
                    reply = await self.server.host_query(f"host-serial:{self.serial}:features")
            self._features = parse_features(reply)
        return "shell_v2" in self._features

    async def shell(self, command: str, *, timeout: float | None = None, check: bool = False) -> ShellOutput:
        """Run ``command`` in the phone's shell; with ``check=True`` a non-zero exit raises CommandFailed."""
        limit = self.timeouts.command if timeout is None else timeout
        use_v2 = await self._uses_shell_v2(command, limit)
        if logger.isEnabledFor(logging.DEBUG):
            shown = "[secret input]" if SECRET_INPUT.get() else command
            logger.debug("shell", extra={"serial": self.serial, "command": shown})
        if use_v2:
            async with self._stream(shell_proto.v2_service(command), command, limit) as conn:
                out, err, code = await shell_proto.run_v2(conn)
        else:
            service, marker = shell_proto.legacy_command(command)
            async with self._stream(service, command, limit) as conn:
                out, err, code = await shell_proto.run_legacy(conn, marker)
        result = ShellOutput(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code)
        if check and code != 0:
            raise self._failed(command, f"exited with {code}", result)
        return result

    async def exec_out(self, command: str, *, timeout: float | None = None) -> bytes:
        """Raw bytes of ``exec:command`` (binary-clean; no exit code, stderr mixed in)."""
        limit = self.timeouts.command if timeout is None else timeout
        async with self._stream(f"exec:{command}", command, limit) as conn:
            return await conn.read_to_end()

    async def pull(self, path: str, *, timeout: float | None = None) -> bytes:
        """A file's bytes (sync RECV); CommandFailed when the phone cannot read it."""
        limit = self.timeouts.transfer if timeout is None else timeout
        async with self._stream("sync:", f"pull {path}", limit) as conn:
            data = await sync.recv(conn, path)
            await sync.quit_session(conn)
            return data

    async def pull_chunks(self, path: str, *, timeout: float | None = None) -> AsyncGenerator[bytes, None]:
        """A file's bytes as the phone sends them (sync RECV), in chunks of at most 64 KiB, so a
        caller can pass a large file on without holding it; CommandFailed when the phone cannot read
        it. ``timeout`` bounds the opening and the wait for each chunk, not the whole: whoever
        iterates sets the pace (a slow HTTP client), and a deadline spanning its ``yield``s would
        cancel the consumer's own awaits. Closing the iterator early closes the stream."""
        limit = self.timeouts.transfer if timeout is None else timeout
        command = f"pull {path}"
        with adb_errors(self.serial, command, timeout=limit):
            async with asyncio.timeout(limit):
                conn = await self._open("sync:")
        with closing(conn), adb_errors(self.serial, command, timeout=limit):
            async with aclosing(sync.recv_chunks(conn, path)) as chunks:
                while True:
                    async with asyncio.timeout(limit):
                        chunk = await anext(chunks, None)
                    if chunk is None:
                        break
                    yield chunk
            await sync.quit_session(conn)

    async def install_apk(self, apk: bytes, *, timeout: float | None = None) -> None:
        """``pm install -r`` of an APK's bytes, pushed to /data/local/tmp first and removed after;
        CommandFailed (its ``output`` the ``Failure [...]`` line) when the package manager refuses."""
        limit = self.timeouts.transfer if timeout is None else timeout
        path = f"/data/local/tmp/phonefleet-{secrets.token_hex(6)}.apk"
        await self.push(apk, path, timeout=limit)
        try:
            out = await self.shell(f"pm install -r {path}", timeout=limit)
        finally:
            await self.shell(f"rm -f {path}", timeout=self.timeouts.command)
        if "Success" not in out.stdout:
            raise self._failed(f"pm install -r {path}", "refused the APK", out)

    async def logcat(self, args: Sequence[str] = (), *, timeout: float | None = None) -> AsyncIterator[str]:
        """Lines of ``logcat ARGS`` as the phone writes them (without their newline), until the phone
        ends it (``-d``, ``-m N``) or the caller stops iterating, which closes the stream. ``timeout``
        bounds the opening only: a log may stay quiet for as long as it likes."""
        command = shlex.join(["logcat", *args])
        limit = self.timeouts.command if timeout is None else timeout
        with adb_errors(self.serial, command, timeout=limit):
            async with asyncio.timeout(limit):
                conn = await self.server.open_service(self.serial, f"exec:{command}")
        with closing(conn), adb_errors(self.serial, command):
            pending = b""
            while chunk := await conn.read_some():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    yield line.rstrip(b"\r").decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")

    async def lstat(self, *paths: str, timeout: float | None = None) -> list[sync.FileStat]:
        """Each path's ``lstat`` (a final symbolic link is not followed), in one sync session."""
        limit = self.timeouts.command if timeout is None else timeout
        async with self._stream("sync:", f"lstat {' '.join(paths)}", limit) as conn:
            stats = [await sync.lstat(conn, path) for path in paths]
            await sync.quit_session(conn)
            return stats

    async def push(self, data: bytes, path: str, *, mode: int = 0o644, timeout: float | None = None) -> None:
        """Write ``data`` to ``path`` (sync SEND, parents created); CommandFailed when the phone refuses."""
        limit = self.timeouts.transfer if timeout is None else timeout
        async with self._stream("sync:", f"push {path}", limit) as conn:
            await sync.send(conn, data, path, mode)
            await sync.quit_session(conn)

    # --- screen ----------------------------------------------------------------------------------

    async def screen_size(self, *, timeout: float | None = None) -> tuple[int, int]:
        """(width, height) in pixels from ``wm size``; an override size wins over the physical one."""
        out = await self.shell("wm size", timeout=timeout, check=True)
        size = dumpsys.parse_wm_size(out.stdout)
        if size is None:
            raise self._failed("wm size", "printed no size", out)
        return size

    async def raw_frame(self, *, timeout: float | None = None) -> RawFrame:
        """One raw ``screencap`` through exec (no file on the phone); the cheapest capture to compare."""
        limit = self.timeouts.screenshot if timeout is None else timeout
        async with self._stream("exec:screencap", "screencap", limit) as conn:
            # Parsed inside the stream's error mapping: a frame cut short means the phone went away.
            return frames.parse_raw(await conn.read_to_end())

    async def screencap_png(self, *, timeout: float | None = None) -> bytes:
        """The phone's own PNG of the screen (``screencap -p`` through exec), checked to be complete."""
        limit = self.timeouts.screenshot if timeout is None else timeout
        async with self._stream("exec:screencap -p", "screencap -p", limit) as conn:
            data = await conn.read_to_end()
            frames.check_png(data)
            return data

    async def screenshot(
        self, format: Literal["raw", "png"] = "raw", *, timeout: float | None = None
    ) -> Image.Image:
        """The screen as a PIL image: ``raw`` (RGBA, zero copy, big transfer) or ``png`` (decoded off the loop)."""
        if format == "raw":
            return (await self.raw_frame(timeout=timeout)).image()
        if format == "png":
            data = await self.screencap_png(timeout=timeout)
            return await asyncio.to_thread(frames.decode_png, data)
        raise ValueError(f"unknown screenshot format {format!r}")

    async def wait_for_settle(
        self, timeout: float = 5.0, interval: float = 0.3, stable_frames: int = 2, *, strict: bool = False
    ) -> SettleResult:
        """Capture raw frames until ``stable_frames`` in a row are byte-identical, or ``timeout`` s pass.

        Returns the last frame with ``settled=False`` when the screen kept changing (a video, a
        spinner), so the agent can still act on it; ``strict=True`` raises DeviceTimeout instead.
        ``interval`` should exceed the longest intermediate state that must not count as settled
        (a launch's starting window). Each capture keeps its own deadline (``timeouts.screenshot``),
        so a capture in flight may end after ``timeout``.
        """
        result = await wait_for_settle(self.raw_frame, timeout, interval, stable_frames)
        if strict and not result.settled:
            raise DeviceTimeout(
                f"{self.serial}: screen still changing after {timeout:g} s ({result.frames} frames)",
                device_id=self.serial,
                command="screencap",
            )
        return result

    # --- input -----------------------------------------------------------------------------------

    async def run_input(self, command: str, *, timeout: float | None = None) -> None:
        """Run an ``input``/``am``/``ime`` command line; CommandFailed on a non-zero exit or an error line."""
        out = await self.shell(command, timeout=timeout)
        if out.exit_code != 0 or ERROR_LINE.search(out.output):
            raise self._failed(command, f"failed (exit {out.exit_code})", out)

    async def tap(self, x: float, y: float, *, timeout: float | None = None) -> None:
        """Tap at (x, y) screen pixels."""
        await self.run_input(f"input tap {_px(x)} {_px(y)}", timeout=timeout)

    async def double_tap(self, x: float, y: float, *, timeout: float | None = None) -> None:
        """Two taps at (x, y) in one shell command line, so no round trip sits between them."""
        tap = f"input tap {_px(x)} {_px(y)}"
        await self.run_input(f"{tap}; {tap}", timeout=timeout)

    async def long_press(
        self, x: float, y: float, duration_ms: int = 800, *, timeout: float | None = None
    ) -> None:
        """Press at (x, y) for ``duration_ms`` (a swipe that does not move); the deadline adds the duration."""
        px, py = _px(x), _px(y)
        limit = (self.timeouts.command if timeout is None else timeout) + duration_ms / 1000
        await self.run_input(f"input swipe {px} {py} {px} {py} {int(duration_ms)}", timeout=limit)

    async def swipe(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        duration_ms: int = 300,
        *,
        timeout: float | None = None,
    ) -> None:
        """Swipe from (x1, y1) to (x2, y2) over ``duration_ms``; the deadline adds the duration."""
        limit = (self.timeouts.command if timeout is None else timeout) + duration_ms / 1000
        line = f"input swipe {_px(x1)} {_px(y1)} {_px(x2)} {_px(y2)} {int(duration_ms)}"
        await self.run_input(line, timeout=limit)

    async def key(self, key: str | int, *, timeout: float | None = None) -> None:
        """Press a key by name (back, home, recents, enter, delete …; see ``keys.KEYCODES``) or code."""
        await self.run_input(f"input keyevent {keycode(key)}", timeout=timeout)

    async def type_text(self, text: str, *, clear: bool = True, timeout: float | None = None) -> None:
        """Type into the focused field: ADB Keyboard when installed, else ``input text`` (ASCII only).

        Raises TextInputUnsupported for non-ASCII text on a phone without ADB Keyboard.
        """
        await self.text.type_text(text, clear=clear, timeout=timeout)

    async def clear_text(self, *, timeout: float | None = None) -> None:
        """Empty the focused field."""
        await self.text.clear_text(timeout=timeout)

    async def restore_ime(self, *, timeout: float | None = None) -> None:
        """Switch back to the keyboard that was active before ``type_text`` selected ADB Keyboard."""
        await self.text.restore_ime(timeout=timeout)


__all__ = ["SECRET_INPUT", "AdbDevice", "DeviceTimeouts"]
