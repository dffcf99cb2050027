"""The virtual phone: state, apps, input and the cached framebuffer behind one lock.

docs/virtual-phone.md describes what it imitates. ``VirtualPhone`` is assembled from its parts:
the activity manager, input and the display (one module each); they share this object's state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from device_pool.sim.activity_manager import ActivityManager
from device_pool.sim.apps import APP_CLASSES
from device_pool.sim.apps.base import App
from device_pool.sim.display import Display, Frame
from device_pool.sim.input_manager import InputManager
from device_pool.sim.intents import LAUNCHER, ActivityNotFound
from device_pool.sim.logcat import LogBuffer
from device_pool.sim.state import ADB_IME, LATIN_IME, SDCARD, PhoneState

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


class VirtualPhone(ActivityManager, InputManager, Display):
    """A phone with apps; every public method is thread-safe (one re-entrant lock).

    Its parts share this object's state: the activity manager (``activity_manager.py``), input
    (``input_manager.py``) and the display (``display.py``); here are the rest: properties, files,
    settings, content queries and the factory reset.
    """

    def __init__(self, data_dir: Path, config: PhoneConfig | None = None) -> None:
        self.config = config or PhoneConfig()
        self.data_dir = Path(data_dir)
        self._lock = threading.RLock()
        self.fs_root = self.data_dir / "fs"
        self.state = PhoneState(self.fs_root)
        self.props = self._make_props()
        self.log = LogBuffer()  # what `logcat` reads; in memory, as a phone's log buffers are
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
        # Streaming screenrecords (screenrecord.py): running now, started in all, most at once. Tests
        # read them (`phonefleet-sim recordings`) to check the host runs one capture per phone.
        self.recordings = {"running": 0, "started": 0, "peak": 0}
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
        self.log.write("D", "SettingsProvider", f"put {namespace} {key}={value}")

    def settings_delete(self, namespace: str, key: str) -> bool:
        with self._lock:
            return self.state.settings_delete(namespace, key)

    def settings_list(self, namespace: str) -> dict[str, str]:
        with self._lock:
            return self.state.settings_list(namespace)

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
        self.log.clear()


__all__ = ["ADB_IME", "LATIN_IME", "ActivityNotFound", "Frame", "PhoneConfig", "VirtualPhone"]
