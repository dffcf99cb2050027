"""The apps-and-UI part of ``AdbDevice``: launching apps, the app in front, the view hierarchy.

A base of ``AdbDevice`` (``device.py``), which provides the shell, input and file calls these use.
"""

from __future__ import annotations

import logging
import re
import shlex
import uuid
from typing import TYPE_CHECKING

from device_pool.driver import dumpsys
from device_pool.driver.apps import AppCatalog, find_labelled_icon, is_component
from device_pool.driver.errors import UnknownApp
from device_pool.errors import CommandFailed, DeviceOffline, DeviceTimeout

if TYPE_CHECKING:
    from device_pool.driver.device import DeviceTimeouts
    from device_pool.driver.settle import SettleResult
    from device_pool.driver.shell import ShellOutput

logger = logging.getLogger("device_pool.driver.device")  # the device's logger, as before the split

# `input`, `am` and `ime` report some failures only as text, with exit code 0.
ERROR_LINE = re.compile(r"(?m)^(Error|Exception|Unknown command|java\.\w+\.\w*Exception)")


class DeviceUi:
    """Apps and UI over the phone's shell: ``am``/``monkey``, ``dumpsys``, ``uiautomator``."""

    serial: str
    apps: AppCatalog
    timeouts: DeviceTimeouts

    if TYPE_CHECKING:  # AdbDevice defines these

        async def shell(
            self, command: str, *, timeout: float | None = None, check: bool = False
        ) -> ShellOutput: ...
        async def pull(self, path: str, *, timeout: float | None = None) -> bytes: ...
        async def key(self, key: str | int, *, timeout: float | None = None) -> None: ...
        async def tap(self, x: float, y: float, *, timeout: float | None = None) -> None: ...
        async def wait_for_settle(
            self, timeout: float = 5.0, interval: float = 0.3, stable_frames: int = 2, *, strict: bool = False
        ) -> SettleResult: ...
        def _failed(self, command: str, what: str, out: ShellOutput | None = None) -> CommandFailed: ...

    async def launch(self, app: str, *, timeout: float | None = None) -> str:
        """Start an app by known name (Settings, 设置 …), package, or ``pkg/activity``; returns the package.

        Raises UnknownApp for a name that maps to no package, or a package the phone lacks.
        """
        app = app.strip()
        if is_component(app):
            package = app.split("/", 1)[0]
            command = f"am start -n {shlex.quote(app)}"
        else:
            resolved = self.apps.resolve(app)
            if resolved is None:
                return await self._launch_by_label(app, timeout)
            package = resolved
            command = f"monkey -p {package} -c android.intent.category.LAUNCHER 1"
        out = await self.shell(command, timeout=timeout)
        if any(sign in out.output for sign in ("No activities found", "monkey aborted", "does not exist")):
            raise UnknownApp(
                f"{self.serial}: {app!r} ({package}) is not installed or has no launcher activity",
                device_id=self.serial,
                command=command,
                exit_code=out.exit_code,
                output=out.output,
            )
        if out.exit_code != 0 or ERROR_LINE.search(out.output):
            raise self._failed(command, f"failed (exit {out.exit_code})", out)
        return package

    async def _launch_by_label(self, app: str, timeout: float | None) -> str:
        """Tap the home-screen icon labelled ``app``: the label search that works on any launcher."""
        await self.key("home", timeout=timeout)
        await self.wait_for_settle(timeout=2.0, interval=0.1)
        point = find_labelled_icon(await self.ui_dump(timeout=timeout), app)
        if point is None:
            raise UnknownApp(
                f"unknown app {app!r}: not a known app name and no home-screen icon has that label",
                device_id=self.serial,
                command="launch",
                output=app,
            )
        await self.tap(*point, timeout=timeout)
        package, _activity = await self.foreground(timeout=timeout)
        return package

    async def foreground(self, *, timeout: float | None = None) -> tuple[str, str]:
        """(package, fully qualified activity) in front, from ``dumpsys window`` then ``dumpsys activity``."""
        windows = await self.shell("dumpsys window", timeout=timeout, check=True)
        found = dumpsys.parse_focused_window(windows.stdout)
        if found is None:
            # No focused app window (a transition, the notification shade): ask the activity stack.
            command = "dumpsys activity activities"
            activities = await self.shell(command, timeout=timeout, check=True)
            found = dumpsys.parse_resumed_activity(activities.stdout)
            if found is None:
                raise self._failed(command, "shows no focused or resumed activity", activities)
        return found

    async def ui_dump(self, *, timeout: float | None = None) -> str:
        """The view hierarchy as uiautomator XML: dumped to a unique file, pulled over sync, removed."""
        limit = self.timeouts.ui_dump if timeout is None else timeout
        # A unique path per call: calls on one phone may overlap, and a fixed path would race.
        path = f"/data/local/tmp/phonefleet-ui-{uuid.uuid4().hex}.xml"
        command = f"uiautomator dump {path}"
        out = await self.shell(command, timeout=limit)
        # uiautomator prints "ERROR: …" with exit code 0 when it cannot get the window.
        if out.exit_code != 0 or "ERROR" in out.output or "dumped to" not in out.output:
            raise self._failed(command, "failed", out)
        try:
            data = await self.pull(path, timeout=limit)
        except CommandFailed:
            await self._remove_quietly(path, limit)
            raise
        await self._remove_quietly(path, limit)
        xml = data.decode("utf-8", errors="replace")
        if not xml.lstrip().startswith("<?xml"):
            raise self._failed(command, f"wrote no XML: {xml[:200]!r}")
        return xml

    async def _remove_quietly(self, path: str, timeout: float) -> None:
        try:
            await self.shell(f"rm -f {shlex.quote(path)}", timeout=timeout)
        except (DeviceOffline, DeviceTimeout):
            # The phone went away or hangs: the caller's own error matters more than a leftover file.
            logger.warning(
                "could not remove a temporary file", extra={"serial": self.serial, "path": path}
            )


__all__ = ["ERROR_LINE", "DeviceUi"]
