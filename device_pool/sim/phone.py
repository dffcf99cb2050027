"""The virtual phone: state, apps, input and the cached framebuffer behind one lock.

See docs/sim-contract.md for the contract. The tree of the screen in front is rebuilt from state
on every query (it is small); the frame is redrawn only when that tree's signature changes, so
screencap, the live view and settle checks all share one cached frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from device_pool.sim import counter, render, views
from device_pool.sim import keycodes as kc
from device_pool.sim.apps import (
    APP_CLASSES,
    EXTRA_LABELS,
    IME_SERVICES,
    SYSTEM_PACKAGES,
    systemui,
)
from device_pool.sim.apps.base import App, Ctx
from device_pool.sim.intents import LAUNCHER, ActivityNotFound, resolve
from device_pool.sim.state import ADB_IME, LATIN_IME, SDCARD, PhoneState
from device_pool.sim.views import View, Window

logger = logging.getLogger(__name__)

READ_ONLY_ROOTS = ("/system", "/vendor", "/proc", "/sys", "/product", "/apex", "/odm", "/dev")


@dataclass(frozen=True)
class PhoneConfig:
    width: int = 1080
    height: int = 2400
    density: int = 420
    seed: int = 0
    serial: str = "PFSIM0000"
    model: str = "PhoneFleet Sim"
    launch_delay_ms: int = 250
    show_frame_counter: bool = False


@dataclass(frozen=True)
class Frame:
    width: int
    height: int
    rgba: bytes
    seq: int
    secure: bool

    def image(self) -> Image.Image:
        """An RGBA image sharing this frame's bytes (read-only)."""
        return Image.frombuffer("RGBA", (self.width, self.height), self.rgba, "raw", "RGBA", 0, 1)


class VirtualPhone:
    """A phone with apps; every public method is thread-safe (one re-entrant lock)."""

    def __init__(self, data_dir: Path, config: PhoneConfig | None = None) -> None:
        self.config = config or PhoneConfig()
        self.data_dir = Path(data_dir)
        self._lock = threading.RLock()
        self.fs_root = self.data_dir / "fs"
        self.state = PhoneState(self.fs_root)
        self.props = self._make_props()
        self._apps: dict[str, App] = {cls.package: cls(self) for cls in APP_CLASSES}
        self._unit = min(self.config.density / 160, self.config.width / 360)
        self._frame: Frame | None = None
        self._sig: object = None
        self._seq = 0
        self._black: bytes | None = None
        # The frame counter (counter.py) and how often it ticks on its own (0: only on redraws).
        self._counter_on = self.config.show_frame_counter
        self._tick_hz = 0.0
        self._base: tuple[object, Image.Image] | None = None  # (tree signature, picture without counter)
        self._boot_home()
        if not self.state.exists():
            self.state.factory(self.config.seed, self.packages())

    def _boot_home(self) -> None:
        for app in self._apps.values():
            app.reset()
        self._front = LAUNCHER
        self._recent: list[str] = []  # task packages, most recent last (the launcher excluded)
        self._starting_until: dict[str, float] = {}
        self._recents_open = False
        self._screen_on = True
        self._png_cache: tuple[Frame, bytes] | None = None
        launcher = self._apps[LAUNCHER]
        launcher.stack = [launcher.create_screen(next(iter(launcher.activities)), None)]

    def _make_props(self) -> dict[str, str]:
        c = self.config
        fingerprint = "phonefleet/sim_x86_64/sim:13/TQ3A.230901.001/20240603:userdebug/test-keys"
        return {
            "ro.serialno": c.serial, "ro.boot.serialno": c.serial, "ro.product.model": c.model,
            "ro.product.name": "sim_x86_64", "ro.product.device": "sim", "ro.product.brand": "PhoneFleet",
            "ro.product.manufacturer": "PhoneFleet", "ro.product.cpu.abi": "x86_64",
            "ro.build.version.release": "13", "ro.build.version.sdk": "33",
            "ro.build.version.security_patch": "2023-09-01", "ro.build.display.id": "TQ3A.230901.001",
            "ro.build.id": "TQ3A.230901.001", "ro.build.type": "userdebug", "ro.build.tags": "test-keys",
            "ro.build.fingerprint": fingerprint, "ro.sf.lcd_density": str(c.density),
            "ro.debuggable": "1", "ro.secure": "1", "sys.boot_completed": "1", "dev.bootcomplete": "1",
            "init.svc.bootanim": "stopped", "persist.sys.timezone": "GMT", "persist.sys.locale": "en-US",
            "service.adb.root": "0", "ro.kernel.qemu": "0", "ro.hardware": "sim",
        }  # fmt: skip

    # ---- Host protocol (used by apps, always under the lock)
    @property
    def seed(self) -> int:
        return self.config.seed

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def launchable_apps(self) -> list[App]:
        return [a for a in self._apps.values() if a.launcher_class() is not None]

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

    # ---- files
    def host_path(self, device_path: str) -> Path:
        """The host path for a phone path; ".." never climbs above the phone's root."""
        parts: list[str] = []
        for part in PurePosixPath("/" + device_path).parts[1:]:
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in (".", ""):
                parts.append(part)
        mapped = "/".join(parts)
        for alias in ("sdcard", "storage/self/primary", "mnt/sdcard"):
            if mapped == alias or mapped.startswith(alias + "/"):
                mapped = SDCARD + mapped[len(alias) :]
                break
        return self.fs_root / mapped if mapped else self.fs_root

    def is_read_only(self, device_path: str) -> bool:
        rel = self.host_path(device_path).relative_to(self.fs_root).as_posix()
        path = "/" + rel if rel != "." else "/"
        return path == "/" or any(path == r or path.startswith(r + "/") for r in READ_ONLY_ROOTS)

    # ---- settings
    def settings_get(self, namespace: str, key: str) -> str | None:
        with self._lock:
            return self.state.settings_get(namespace, key)

    def settings_put(self, namespace: str, key: str, value: str) -> None:
        with self._lock:
            self.state.settings_put(namespace, key, value)

    def settings_delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            return self.state.settings_delete(namespace, key)

    def settings_list(self, namespace: str) -> dict[str, str]:
        with self._lock:
            return self.state.settings_list(namespace)

    # ---- packages and activities
    def packages(self) -> list[str]:
        return sorted(set(self._apps) | set(SYSTEM_PACKAGES))

    def _zh(self) -> bool:
        return (self.state.settings_get("system", "system_locales") or "").lower().startswith("zh")

    def app_label(self, package: str) -> str | None:
        with self._lock:
            zh = self._zh()
            if package in self._apps:
                return self._apps[package].label(zh)
            if package in EXTRA_LABELS:
                return EXTRA_LABELS[package][1 if zh else 0]
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

    # ---- input
    def _front_screen(self):
        app = self._apps[self._front]
        return app, app.top

    def _starting(self) -> bool:
        until = self._starting_until.get(self._front)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._starting_until[self._front]
            return False
        return True

    def tap(self, x: float, y: float) -> None:
        with self._lock:
            if not self._screen_on or self._starting():
                return
            node = views.hit_test(self._windows(), x, y)
            if node is None:
                return
            if node.edit_key:
                _, screen = self._front_screen()
                if screen is not None:
                    screen.focus = node.edit_key
            if node.on_click is not None and node.enabled:
                node.on_click()

    def long_press(self, x: float, y: float, duration_ms: int = 600) -> None:
        with self._lock:
            if not self._screen_on or self._starting():
                return
            node = views.hit_test(self._windows(), x, y)
            if node is not None and node.on_long_click is not None:
                node.on_long_click()

    def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int = 300) -> None:
        with self._lock:
            dx, dy = x2 - x1, y2 - y1
            slop = 8 * self._unit
            if abs(dx) < slop and abs(dy) < slop:
                if duration_ms >= 500:
                    self.long_press(x1, y1, duration_ms)
                else:
                    self.tap(x1, y1)
                return
            if not self._screen_on or self._starting():
                return
            # Gesture navigation: a swipe up from the bottom edge goes home.
            if y1 >= self.config.height - 24 * self._unit and -dy > 3 * slop and abs(dy) > abs(dx):
                self.go_home()
                return
            if abs(dy) <= abs(dx):
                return
            target = views.scroll_target(self._windows(), x1, y1)
            if target is not None and target.on_scroll is not None:
                target.on_scroll(round(-dy))

    def key(self, keycode: int) -> None:
        with self._lock:
            if keycode in (kc.POWER, kc.SLEEP, kc.WAKEUP):
                self._screen_on = keycode == kc.WAKEUP or (keycode == kc.POWER and not self._screen_on)
                return
            if not self._screen_on:  # other keys do not wake the phone
                return
            if keycode == kc.HOME:
                self.go_home()
            elif keycode == kc.APP_SWITCH:
                self._recents_open = not self._recents_open
            elif keycode == kc.BACK:
                self._back()
            elif keycode in (kc.DEL, kc.FORWARD_DEL, kc.ENTER, kc.TAB):
                self._edit_key(keycode)
            elif keycode == kc.SPACE:
                self.type_text(" ")
            elif 29 <= keycode <= 54 or 7 <= keycode <= 16:
                self.type_text(kc.CODE_TO_NAME[keycode].lower())

    def _back(self) -> None:
        if self._recents_open:
            self._recents_open = False
            return
        app = self._apps[self._front]
        if app.package != LAUNCHER and not app.back():
            self.finish_app(app.package)

    def _edit_key(self, keycode: int) -> None:
        app, screen = self._front_screen()
        if screen is None or self._recents_open or self._starting():
            return
        if keycode == kc.TAB:
            keys = [n.edit_key for w in self._windows() for n in w.root.walk() if n.edit_key]
            if keys:
                i = keys.index(screen.focus) if screen.focus in keys else -1
                screen.focus = keys[(i + 1) % len(keys)]
            return
        if not screen.focus:
            return
        if keycode == kc.DEL:
            screen.fields[screen.focus] = screen.fields.get(screen.focus, "")[:-1]
        elif keycode == kc.ENTER:
            app.submit(screen, screen.focus)
        # FORWARD_DEL: the cursor is always at the end, so there is nothing after it.

    def type_text(self, text: str) -> None:
        with self._lock:
            _, screen = self._front_screen()
            if screen is None or not screen.focus or self._recents_open or self._starting():
                return
            screen.fields[screen.focus] = screen.fields.get(screen.focus, "") + text

    def clear_text(self) -> None:
        with self._lock:
            _, screen = self._front_screen()
            if screen is not None and screen.focus:
                screen.fields[screen.focus] = ""

    # ---- input methods (kept in secure settings, as Android does)
    def ime_list(self, enabled_only: bool = False) -> list[str]:
        with self._lock:
            return self.state.ime_list(list(IME_SERVICES), enabled_only)

    def ime_enable(self, ime_id: str, enabled: bool = True) -> bool:
        """False: no such IME. Disabling the current one falls back to another enabled one."""
        with self._lock:
            return ime_id in IME_SERVICES and self.state.ime_enable(ime_id, enabled)

    def ime_set(self, ime_id: str) -> bool:
        """False: unknown or not enabled."""
        with self._lock:
            return ime_id in self.ime_list(enabled_only=True) and self.state.ime_set(ime_id)

    def ime_current(self) -> str:
        with self._lock:
            return self.state.ime_current()

    # ---- display
    def _windows(self) -> list[Window]:
        c = self.config
        zh = self._zh()
        top = round(systemui.STATUS_BAR_DP * self._unit)
        app = self._apps[self._front]
        secure = False
        if self._recents_open:
            running = [self._apps[p] for p in reversed(self._recent) if self._apps[p].stack]
            root = systemui.recents(running, c.width, c.height, top, self._unit, zh, self._open_recent,
                                    self._clear_recents)  # fmt: skip
            bar_colors = ((60, 64, 72), (255, 255, 255))
        elif self._starting():
            root = systemui.starting_window(app, c.width, c.height, self._unit, zh)
            bar_colors = ((250, 250, 250), (32, 33, 36))
        else:
            screen = app.top
            assert screen is not None, "the front app always has a screen"
            ctx = Ctx(self, app, screen, c.width, c.height, self._unit, top, zh)
            root = View(views.FRAME, (0, 0, c.width, c.height), bg=app.status_bg)
            root.add(app.build(ctx))
            views.set_package(root, app.package)
            secure = app.is_secure(screen)
            bar_colors = (app.status_bg, app.status_fg)
        bar = systemui.status_bar(self.state, c.seed, c.width, self._unit, *bar_colors)
        return [Window(root, secure=secure), Window(bar)]

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

    def frame(self) -> Frame:
        """The current frame, redrawn only when the tree (or screen power) changed — or, with a
        ticking frame counter, when the counter is due (only the counter is drawn again then)."""
        with self._lock:
            windows = self._windows()
            secure = any(w.secure for w in windows) or not self._screen_on
            tree_sig = (self._screen_on, secure, tuple(w.root.signature() for w in windows))
            ticking = self._counter_on and self._tick_hz > 0 and not secure
            tick = int(time.monotonic() * self._tick_hz) if ticking else None
            sig = (tree_sig, self._counter_on, tick)
            if self._frame is not None and sig == self._sig:
                return self._frame
            c = self.config
            self._seq += 1
            if secure:
                if self._black is None:
                    self._black = b"\x00\x00\x00\xff" * (c.width * c.height)
                rgba = self._black
            elif self._counter_on:
                if self._base is None or self._base[0] != tree_sig:
                    self._base = (tree_sig, render.render(windows, c.width, c.height))
                image = self._base[1].copy()
                counter.draw(image, self._seq)
                rgba = image.tobytes()
            else:
                self._base = None
                rgba = render.render(windows, c.width, c.height).tobytes()
            self._frame = Frame(c.width, c.height, rgba, self._seq, secure)
            self._sig = sig
            return self._frame

    def set_frame_counter(self, on: bool, tick_hz: float = 0.0) -> None:
        """Draw the frame counter (``counter.py``); with ``tick_hz`` > 0 it also redraws itself that
        often, like a spinner — a screen that keeps changing, for video benchmarks."""
        if tick_hz < 0:
            raise ValueError("tick_hz must not be negative")
        with self._lock:
            self._counter_on = on
            self._tick_hz = tick_hz if on else 0.0

    def frame_counter(self) -> tuple[bool, float]:
        """(on, tick_hz)."""
        with self._lock:
            return self._counter_on, self._tick_hz

    def screencap_png(self) -> bytes:
        """The current frame as PNG; encoded once per frame (on a real phone the phone pays it)."""
        import io

        frame = self.frame()
        cached = self._png_cache
        if cached is not None and cached[0] is frame:
            return cached[1]
        buf = io.BytesIO()
        frame.image().save(buf, format="PNG", compress_level=1)
        self._png_cache = (frame, buf.getvalue())
        return self._png_cache[1]

    def screencap_raw(self) -> bytes:
        f = self.frame()
        header = f.width.to_bytes(4, "little") + f.height.to_bytes(4, "little") + (1).to_bytes(4, "little")
        return header + (0).to_bytes(4, "little") + f.rgba

    def ui_xml(self) -> str:
        with self._lock:
            return views.to_uiautomator_xml(self._windows())

    def find(self, text: str | None = None, rid: str | None = None, desc: str | None = None) -> View | None:
        """The first on-screen node with this shown text, resource-id or content-desc (tests, agents)."""
        with self._lock:
            return views.find(self._windows(), lambda n: (text is None or n.shown_text == text)
                              and (rid is None or n.rid == rid) and (desc is None or n.desc == desc))  # fmt: skip

    # ---- content providers
    def contacts(self) -> list[dict[str, str]]:
        with self._lock:
            return self.state.contacts()

    def sms(self, box: str = "all") -> list[dict[str, str]]:
        with self._lock:
            return self.state.sms(box)

    def screen_on(self) -> bool:
        """False after POWER/SLEEP until POWER/WAKEUP (``dumpsys power`` reports it)."""
        with self._lock:
            return self._screen_on

    # ---- lifecycle
    def factory_reset(self) -> None:
        with self._lock:
            self.state.factory(self.config.seed, self.packages())
            self._boot_home()
            self._frame, self._sig, self._base = None, None, None


__all__ = ["ADB_IME", "LATIN_IME", "ActivityNotFound", "Frame", "PhoneConfig", "VirtualPhone"]
