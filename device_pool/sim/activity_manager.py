"""The virtual phone's activity manager: packages and labels, starting and finishing activities, recents.

A part of ``VirtualPhone`` (``phone.py``), which holds the state these methods share; every public
method takes the phone's lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from device_pool.sim.apps import EXTRA_LABELS, SYSTEM_PACKAGES
from device_pool.sim.apps.base import App
from device_pool.sim.intents import LAUNCHER, resolve
from device_pool.sim.logcat import LogBuffer, app_pid
from device_pool.sim.state import PhoneState

if TYPE_CHECKING:
    from device_pool.apk import ApkManifest
    from device_pool.sim.phone import PhoneConfig

# The phone's logger: its log lines keep the name they had when this was part of phone.py.
logger = logging.getLogger("device_pool.sim.phone")


class ActivityManager:
    """Tasks of apps: which is in front, which are recent, which are still starting."""

    config: PhoneConfig
    state: PhoneState
    _lock: threading.RLock
    _apps: dict[str, App]
    _front: str
    _recent: list[str]  # task packages, most recent last (the launcher excluded)
    _starting_until: dict[str, float]
    _recents_open: bool
    _screen_on: bool

    def go_home(self) -> None:
        with self._lock:
            self._recents_open = False
            self._front = LAUNCHER

    def finish_app(self, package: str) -> None:
        """The app's root activity finished (BACK at its root): its task goes, home shows."""
        with self._lock:
            app = self._apps.get(package)
            if app is not None and package != LAUNCHER:
                app.reset()
                if package in self._recent:
                    self._recent.remove(package)
            if self._front == package:
                self._front = LAUNCHER

    log: LogBuffer

    def packages(self) -> list[str]:
        return sorted(set(self._apps) | set(SYSTEM_PACKAGES) | set(self.state.installed()))

    def install_package(self, manifest: ApkManifest, path: str) -> bool:
        """Add (or replace) an installed package; False when the name is one of the phone's own."""
        with self._lock:
            if manifest.package in self._apps or manifest.package in SYSTEM_PACKAGES:
                return False
            replaced = manifest.package in self.state.installed()
            self.state.install(manifest.package, {
                "version_code": manifest.version_code, "version_name": manifest.version_name,
                "label": manifest.label, "path": path,
            })  # fmt: skip
        verb = "replaced" if replaced else "installed"
        self.log.write("I", "PackageManager", f"{verb} {manifest.package} versionCode={manifest.version_code}")
        return True

    def uninstall_package(self, package: str) -> bool:
        """Remove an installed package with its data; False for one that was not installed."""
        with self._lock:
            removed = self.state.uninstall(package) is not None
        if removed:
            self.log.write("I", "PackageManager", f"removed {package}")
        return removed

    def _zh(self) -> bool:
        return (self.state.settings_get("system", "system_locales") or "").lower().startswith("zh")

    def app_label(self, package: str) -> str | None:
        with self._lock:
            zh = self._zh()
            if package in self._apps:
                return self._apps[package].label(zh)
            if package in EXTRA_LABELS:
                return EXTRA_LABELS[package][1 if zh else 0]
            installed = self.state.installed().get(package)
            if installed is not None:
                return installed.get("label") or package
            return None

    def launcher_activity(self, package: str) -> str | None:
        app = self._apps.get(package)
        cls = app.launcher_class() if app else None
        return f"{package}/{app.short(cls)}" if app and cls else None

    def activities(self, package: str) -> list[str]:
        """Fully qualified activity classes of an app (for `dumpsys package`-like answers)."""
        app = self._apps.get(package)
        return list(app.activities) if app else []

    def start_activity(self, component: str | None = None, *, package: str | None = None,
                       action: str | None = None, data: str | None = None,
                       categories: Sequence[str] = ()) -> str:  # fmt: skip
        """Start an activity as `am start` would; returns "pkg/fully.qualified.Activity"."""
        with self._lock:
            app, activity = resolve(self._apps, component, package, action, data, categories)
            self._launch(app, activity, data)
            logger.info("activity started", extra={"component": f"{app.package}/{activity}"})
        self.log.write("I", "ActivityTaskManager", f"START u0 {{cmp={app.package}/{activity}}} from uid 2000")
        self.log.write("I", app.label(False), f"{activity.rsplit('.', 1)[-1]} shown", pid=app_pid(app.package))
        return f"{app.package}/{activity}"

    def _launch(self, app: App, activity: str, data: str | None) -> None:
        self._recents_open = False
        self._screen_on = True
        if app.package == LAUNCHER:
            self._front = LAUNCHER
            return
        if not app.stack:
            app.on_cold_start()
            app.stack = [app.create_screen(activity, data)]
            delay = self.config.launch_delay_ms / 1000
            if delay > 0:
                self._starting_until[app.package] = time.monotonic() + delay
        elif activity != app.launcher_class() or data is not None:
            app.stack.append(app.create_screen(activity, data))
        # else: the task comes to the front as it was, as Android does for a launcher intent.
        self._front = app.package
        if app.package in self._recent:
            self._recent.remove(app.package)
        self._recent.append(app.package)

    def force_stop(self, package: str) -> None:
        with self._lock:
            app = self._apps.get(package)
            if app is None or package == LAUNCHER:
                return
            self._starting_until.pop(package, None)
            self.finish_app(package)
        self.log.write("I", "ActivityManager", f"Force stopping {package} appid=10100 user=0: from pid 2000")

    def clear_package(self, package: str) -> bool:
        with self._lock:
            if package not in self.packages():
                return False
            self.force_stop(package)
            self.state.clear_app(package)
            return True

    def foreground(self) -> tuple[str, str]:
        with self._lock:
            # Android 13's overview (Quickstep) is part of the launcher's activity: it has the focus.
            app = self._apps[LAUNCHER if self._recents_open else self._front]
            top = app.top
            return app.package, top.activity if top else next(iter(app.activities))

    def _open_recent(self, package: str) -> None:
        self._recents_open = False
        self._front = package
        self._recent.remove(package)
        self._recent.append(package)

    def _clear_recents(self) -> None:
        for package in list(self._recent):
            self.finish_app(package)
        self._recents_open = False
        self._front = LAUNCHER


__all__ = ["ActivityManager"]
