"""The device API: calls on the phone a session holds — screenshot, UI tree, input, launching an app,
pushing and pulling files, installing an APK, reading its log.

The API process reaches the phone as the live view does: through the adb server that ``phonefleet
pool`` connects its phones to (``webrtc.adb_host``/``adb_port``), with the driver (``AdbDevice``).
Every call first asks the database whether the caller's tenant has this session, active, holding its
phone's lease right now (``SessionService.holding``): another tenant's session is not found, an
ended one holds no phone (409). Input and launches are allowed to the session's own user (as in the
live view, ``orchestrator/live/access.py``); reads to anyone of its tenant.

What changed the phone (input, a launch) is recorded as a ``session.action`` event, the session's
timeline; typed text is recorded by its length only (it may be a password). Reads are not recorded,
except file pulls (a file leaving the phone is worth knowing of) and opening its log; installs are. File paths are checked in
``device_files.py``; files move over the phone's sync service, as ``adb push``/``pull`` move them; a
pull is streamed to the caller chunk by chunk (``FilePull``), a push arrives whole (``api/edges.py``
reads an upload's body before the route runs, to hold it to its limit and deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image
from sqlalchemy import select

from device_pool.apk import ApkError, read_manifest
from device_pool.driver import AdbDevice, TextInputUnsupported, UnknownApp
from device_pool.driver.apps import is_component
from device_pool.driver.ui_tree import UiNode, ui_nodes
from device_pool.errors import CommandFailed, DeviceError
from orchestrator.db import PersonalPhone
from orchestrator.errors import (
    ApkRejected,
    ElementNotFound,
    FileNotFound,
    InputRejected,
    InvalidRequest,
    PermissionDenied,
)
from orchestrator.services.auth import Principal
from orchestrator.services.device_files import allowed_path, below_root, refuse_links
from orchestrator.services.device_input import (
    DeviceInput,
    DoubleTapInput,
    KeyInput,
    LongPressInput,
    SwipeInput,
    TapInput,
    TextInput,
)
from orchestrator.services.device_logcat import LogcatQuery, parse_line
from orchestrator.services.sessions import SessionService, SessionView

__all__ = ["DeviceApi", "FilePull", "Screenshot", "UiTree"]

logger = logging.getLogger(__name__)

_CONNECT_S = 10.0
# A direction swipe runs across the middle of the screen, from 70 % to 30 % of its height or width.
_SWIPE_NEAR, _SWIPE_FAR = 0.3, 0.7
# After input the call waits until the screen holds still, so its answer (and the next read) sees
# the result: frames this far apart, as the agent waits after a launch (a starting window lasts
# less), at most _SETTLE_S.
_SETTLE_S, _SETTLE_INTERVAL_S = 3.0, 0.3
_PACKAGE = re.compile(r'<node\b[^>]*?\bpackage="([^"]*)"')


@dataclass(frozen=True)
class Screenshot:
    data: bytes
    media_type: str
    screen: tuple[int, int]  # the phone's pixels
    size: tuple[int, int]  # the image's pixels (the screen times the scale)


@dataclass(frozen=True)
class FilePull:
    """A file on its way from the phone: its path, its size (as its stat said), and its bytes in
    chunks of at most 64 KiB (the sync protocol's packets) for the caller to pass on."""

    path: str
    size: int
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True)
class UiTree:
    xml: str
    nodes: list[UiNode]
    screen: tuple[int, int]
    package: str  # the app in front, as the dump's root node says

    def as_json(self) -> dict[str, Any]:
        width, height = self.screen
        return {
            "screen": {"width": width, "height": height},
            "package": self.package,
            "elements": [node.as_json() for node in self.nodes],
        }


class DeviceApi:
    """Device calls for sessions; one per API process."""

    def __init__(
        self, sessions: SessionService, *, adb_host: str, adb_port: int,
        file_roots: Sequence[str] = ("/sdcard/",), file_max_bytes: int = 64 * 1024 * 1024,
        logcat_recheck_s: float = 5.0,
    ) -> None:  # fmt: skip
        self.sessions = sessions
        self.adb_host = adb_host
        self.adb_port = adb_port
        self.file_roots = tuple(file_roots)
        self.file_max_bytes = file_max_bytes
        self.logcat_recheck_s = logcat_recheck_s

    async def screenshot(
        self, principal: Principal, session_id: uuid.UUID, *, format: Literal["png", "jpeg"] = "png",
        scale: float = 1.0, quality: int = 80, max_side: int | None = None,
    ) -> Screenshot:  # fmt: skip
        """The screen now, scaled by ``scale`` (0–1], and further to fit ``max_side`` pixels on its
        longer side; raises ``SessionNotFound``, ``NoLiveDevice``, ``DeviceError``."""
        _view, phone = await self._phone(principal, session_id)
        image = (await phone.raw_frame()).image()
        if max_side is not None:
            scale = min(scale, max_side / max(image.size))
        return await asyncio.to_thread(_encode, image, format, scale, quality)

    async def ui_tree(self, principal: Principal, session_id: uuid.UUID) -> UiTree:
        """The view hierarchy now: the uiautomator XML and its elements with ids."""
        _view, phone = await self._phone(principal, session_id)
        return await self._tree(phone)

    async def input(self, principal: Principal, session_id: uuid.UUID, action: DeviceInput) -> dict[str, Any]:
        """Send one input and wait for the screen to settle; answers what was done (the point tapped,
        the element, ``settled``: whether the screen held still within 3 s). Raises
        ``PermissionDenied`` (not the session's user), ``ElementNotFound``, ``InputRejected``."""
        view, phone = await self._phone(principal, session_id, touch=True)
        done = await self._perform(phone, action)
        done["settled"] = (await phone.wait_for_settle(_SETTLE_S, _SETTLE_INTERVAL_S, 2)).settled
        await self.sessions.record_action(view, _recorded(done))
        logger.info("session input", extra={"session_id": str(session_id), "input": action.type})
        return done

    async def launch(self, principal: Principal, session_id: uuid.UUID, app: str) -> dict[str, Any]:
        """Start an app; answers its package. Raises ``InputRejected`` for an app the phone lacks,
        ``PermissionDenied`` for one outside the session's personal phone's ``allowed_apps``."""
        view, phone = await self._phone(principal, session_id, touch=True)
        await self._check_allowed(view, phone, app)
        try:
            package = await phone.launch(app)
        except UnknownApp as exc:
            raise InputRejected(f"cannot launch {app!r}: not installed, or no app has that name") from exc
        settled = (await phone.wait_for_settle(_SETTLE_S, _SETTLE_INTERVAL_S, 2)).settled
        done = {"type": "launch", "app": app, "package": package, "settled": settled}
        await self.sessions.record_action(view, done)
        logger.info("session launch", extra={"session_id": str(session_id), "package": package})
        return done

    async def push_file(
        self, principal: Principal, session_id: uuid.UUID, path: str, data: bytes
    ) -> dict[str, Any]:
        """Write ``data`` to ``path`` on the phone (folders on the way created); answers the path and
        size. Raises ``PathNotAllowed`` (422), ``PermissionDenied`` (not the session's user)."""
        path, root = allowed_path(path, self.file_roots)  # before the database: a bad path never costs more
        view, phone = await self._phone(principal, session_id, touch=True)
        parts = below_root(path, root)
        refuse_links(parts, await phone.lstat(*parts))
        await phone.push(data, path)
        done = {"type": "push_file", "path": path, "bytes": len(data)}
        await self.sessions.record_action(view, done)
        logger.info(
            "session file push", extra={"session_id": str(session_id), "path": path, "bytes": len(data)}
        )
        return done

    async def pull_file(self, principal: Principal, session_id: uuid.UUID, path: str) -> FilePull:
        """The file at ``path``, streamed: its size (its stat's) and its bytes in chunks as the phone
        sends them, so a large file never sits whole in this process. Raises ``PathNotAllowed``,
        ``FileNotFound``, and ``InvalidRequest`` for a file over ``file_max_bytes``; the first chunk
        is read here, so a file the phone cannot read raises before anything is answered. Only the
        session's user pulls (a file may hold that user's data), as only they push."""
        path, root = allowed_path(path, self.file_roots)
        view, phone = await self._phone(principal, session_id, touch=True)
        parts = below_root(path, root)
        found = refuse_links(parts, await phone.lstat(*parts))
        if found.error in (errno.ENOENT, errno.ENOTDIR):
            raise FileNotFound(f"no file at {path} on the session's phone")
        if found.error:
            raise InvalidRequest(f"cannot read {path}: {errno.errorcode.get(found.error, found.error)}")
        if found.size > self.file_max_bytes:
            raise InvalidRequest(
                f"{path} is {found.size} bytes; a pull returns at most {self.file_max_bytes} "
                "(device_api.file_max_bytes)"
            )
        chunks = phone.pull_chunks(path)
        try:
            first = await anext(chunks, b"")
        except BaseException:
            await chunks.aclose()
            raise
        await self.sessions.record_action(view, {"type": "pull_file", "path": path, "bytes": found.size})
        logger.info(
            "session file pull", extra={"session_id": str(session_id), "path": path, "bytes": found.size}
        )
        return FilePull(path, found.size, _sized(phone, path, found.size, first, chunks))

    async def install_apk(self, principal: Principal, session_id: uuid.UUID, apk: bytes) -> dict[str, Any]:
        """Install an APK's bytes (replacing an older version); answers its package. Raises
        ``ApkRejected`` for bytes that are not an APK (before anything is sent) or an APK the
        phone's package manager refused (its ``Failure [...]`` reason in the message)."""
        view, phone = await self._phone(principal, session_id, touch=True)  # first: 404 tells nothing more
        try:
            manifest = read_manifest(apk)
        except ApkError as exc:
            raise ApkRejected(f"not an installable APK: {exc.reason}: {exc}") from exc
        try:
            await phone.install_apk(apk)
        except CommandFailed as exc:
            reason = next((ln for ln in exc.output.splitlines() if ln.startswith("Failure")), exc.output.strip())
            raise ApkRejected(f"the phone refused {manifest.package}: {reason[:300]}") from exc
        done = {"type": "install_apk", "package": manifest.package, "bytes": len(apk)}
        await self.sessions.record_action(view, done)
        logger.info("session apk install", extra={"session_id": str(session_id), "package": manifest.package})
        return done

    async def open_logcat(
        self, principal: Principal, session_id: uuid.UUID, query: LogcatQuery
    ) -> AsyncIterator[dict[str, Any]]:
        """The phone's log lines as fields (``device_logcat.parse_line``). The checks (the session,
        its phone) run here, so they answer before a stream starts; the lines then follow until the
        caller stops, the phone ends the log (``dump``), or the session stops holding the phone
        (checked every ``logcat_recheck_s``, when ``SessionNotFound``/``NoLiveDevice`` end it).
        Opening one is recorded; anyone of the tenant may read it (as the UI tree)."""
        view, phone = await self._phone(principal, session_id)
        await self.sessions.record_action(view, {"type": "logcat", **query.describe()})
        return self._follow(principal, session_id, phone.logcat(query.args()))

    async def _follow(
        self, principal: Principal, session_id: uuid.UUID, log: AsyncIterator[str]
    ) -> AsyncIterator[dict[str, Any]]:
        pending: asyncio.Future[str] | None = None
        try:
            while True:
                pending = pending or asyncio.ensure_future(anext(log))
                done, _ = await asyncio.wait({pending}, timeout=self.logcat_recheck_s)
                if not done:
                    await self.sessions.holding(principal, session_id)  # raises once it ended
                    continue
                finished, pending = done.pop(), None
                try:
                    line = finished.result()
                except StopAsyncIteration:
                    return
                yield parse_line(line)
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, DeviceError):
                    await pending
            await log.aclose()  # type: ignore[attr-defined]

    # --- the steps ----------------------------------------------------------------------------

    async def _phone(
        self, principal: Principal, session_id: uuid.UUID, *, touch: bool = False
    ) -> tuple[SessionView, AdbDevice]:
        view = await self.sessions.holding(principal, session_id)
        user = view.session.user_id
        if touch and user is not None and user != principal.user_id:
            raise PermissionDenied(
                f"session {session_id} is another user's; only its user may send input or move files"
            )
        assert view.device is not None  # holding() answers only sessions with a phone
        phone = AdbDevice(view.device.serial, adb_host=self.adb_host, adb_port=self.adb_port)
        await phone.connect(timeout=_CONNECT_S)
        return view, phone

    async def _check_allowed(self, view: SessionView, phone: AdbDevice, app: str) -> None:
        """A session on a personal phone with ``allowed_apps`` launches only those apps, as a task on
        it does (docs/security.md, "App allowlist"): an MCP agent or SDK program drives sessions
        through this call. The package is known before anything runs: a component's, or the app
        catalogue's for a name; a name the catalogue does not know would be found by tapping a
        home-screen icon, after which it is too late to refuse, so it is refused here."""
        phone_id = view.session.personal_phone_id
        if phone_id is None:
            return
        async with self.sessions.db.transaction() as db_session:
            allowed = await db_session.scalar(select(PersonalPhone.allowed_apps).where(PersonalPhone.id == phone_id))
        if allowed is None:
            return
        name = app.strip()
        package = name.split("/", 1)[0] if is_component(name) else phone.apps.resolve(name)
        listed = ", ".join(sorted(allowed)) or "none"
        if package is None:
            raise PermissionDenied(
                f"cannot launch {app!r} on this personal phone: its allowed_apps ({listed}) are checked by "
                "package, and no known app has that name; launch it by its package"
            )
        if package not in allowed:
            raise PermissionDenied(
                f"cannot launch {package} on this personal phone: it is not in its allowed_apps ({listed})"
            )

    async def _tree(self, phone: AdbDevice) -> UiTree:
        xml, screen = await asyncio.gather(phone.ui_dump(), phone.screen_size())
        return UiTree(xml, ui_nodes(xml), screen, _package(xml))

    async def _point(self, phone: AdbDevice, action: TapInput | DoubleTapInput | LongPressInput) -> dict[str, Any]:
        """Where a pointed input lands: its pixels checked against the screen, or its element's centre."""
        if action.element_id is None:
            assert action.x is not None and action.y is not None
            _on_screen(await phone.screen_size(), (action.x, action.y))
            return {"x": action.x, "y": action.y}
        tree = await self._tree(phone)
        node = next((n for n in tree.nodes if n.id == action.element_id), None)
        if node is None:
            raise ElementNotFound(
                f"no element {action.element_id} on the screen now (package {tree.package or 'unknown'}); "
                "read the UI tree again: ids belong to the screen they were read from"
            )
        x, y = node.center
        return {"x": x, "y": y, "element": node.as_json()}

    async def _perform(self, phone: AdbDevice, action: DeviceInput) -> dict[str, Any]:
        done: dict[str, Any] = {"type": action.type}
        if isinstance(action, TapInput | DoubleTapInput | LongPressInput):
            done |= await self._point(phone, action)
            x, y = done["x"], done["y"]
            if isinstance(action, TapInput):
                await phone.tap(x, y)
            elif isinstance(action, DoubleTapInput):
                await phone.double_tap(x, y)
            else:
                await phone.long_press(x, y, duration_ms=action.duration_ms)
        elif isinstance(action, SwipeInput):
            start, end = await self._swipe_path(phone, action)
            await phone.swipe(*start, *end, duration_ms=action.duration_ms)
            done |= {"from": list(start), "to": list(end), "duration_ms": action.duration_ms}
        elif isinstance(action, TextInput):
            try:
                await phone.type_text(action.text, clear=action.clear)
            except TextInputUnsupported as exc:
                raise InputRejected(f"this phone cannot type that text: {exc.message}") from exc
            done |= {"text": action.text, "clear": action.clear}
        elif isinstance(action, KeyInput):
            await phone.key(action.key)
            done["key"] = action.key
        return done

    async def _swipe_path(self, phone: AdbDevice, action: SwipeInput) -> tuple[tuple[int, int], tuple[int, int]]:
        width, height = await phone.screen_size()
        if action.direction is None:
            points = (action.x1, action.y1), (action.x2, action.y2)
            for point in points:
                _on_screen((width, height), point)  # type: ignore[arg-type]
            return points  # type: ignore[return-value]
        mid_x, mid_y = width // 2, height // 2
        near_y, far_y = round(height * _SWIPE_NEAR), round(height * _SWIPE_FAR)
        near_x, far_x = round(width * _SWIPE_NEAR), round(width * _SWIPE_FAR)
        return {
            "up": ((mid_x, far_y), (mid_x, near_y)),
            "down": ((mid_x, near_y), (mid_x, far_y)),
            "left": ((far_x, mid_y), (near_x, mid_y)),
            "right": ((near_x, mid_y), (far_x, mid_y)),
        }[action.direction]


async def _sized(
    phone: AdbDevice, path: str, size: int, first: bytes, chunks: AsyncGenerator[bytes, None]
) -> AsyncIterator[bytes]:
    """The pull's chunks, checked against the size announced (the response's Content-Length): a
    file that grew or shrank while it was read ends the stream with an error, so the client sees a
    cut-off answer rather than a wrong file of the right length."""
    sent = len(first)
    try:
        if first:
            yield first
        async for chunk in chunks:
            sent += len(chunk)
            if sent > size:
                break
            yield chunk
    finally:
        await chunks.aclose()
    if sent != size:
        raise CommandFailed(
            f"{phone.serial}: {path} changed size while it was pulled ({size} bytes announced)",
            device_id=phone.serial, command=f"pull {path}",
        )  # fmt: skip


def _on_screen(screen: tuple[int, int], point: tuple[int, int]) -> None:
    width, height = screen
    x, y = point
    if x >= width or y >= height:
        raise InputRejected(f"point ({x}, {y}) is off the screen, which is {width}x{height} pixels")


def _recorded(done: dict[str, Any]) -> dict[str, Any]:
    """What the timeline keeps of an input: typed text by its length only (it may be a secret)."""
    if done["type"] != "text":
        return done
    return {"type": "text", "chars": len(done["text"]), "clear": done["clear"], "settled": done["settled"]}


def _package(xml: str) -> str:
    """The app in front: the package of the dump's first node (the window's root)."""
    found = _PACKAGE.search(xml)
    return found.group(1) if found else ""


def _encode(image: Image.Image, format: str, scale: float, quality: int) -> Screenshot:
    screen = image.size
    if scale < 1.0:
        size = (max(1, round(screen[0] * scale)), max(1, round(screen[1] * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    out = io.BytesIO()
    if format == "jpeg":
        image.convert("RGB").save(out, "JPEG", quality=quality)
    else:
        image.save(out, "PNG", compress_level=1)  # speed over size: it crosses a LAN, not a modem
    return Screenshot(out.getvalue(), f"image/{format}", screen, image.size)
