"""The virtual phone's display: the window tree of the screen in front, and its frames.

A part of ``VirtualPhone`` (``phone.py``), which holds the state these methods share; every public
method takes the phone's lock. The tree is rebuilt from state on every query (it is small); the
frame is redrawn only when that tree's signature changes, so screencap, the live view and settle
checks all share one cached frame.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from device_pool.sim import counter, render, views
from device_pool.sim.apps import systemui
from device_pool.sim.apps.base import App, Ctx
from device_pool.sim.state import PhoneState
from device_pool.sim.views import View, Window

if TYPE_CHECKING:
    from device_pool.sim.phone import PhoneConfig


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


class Display:
    """What the screen shows: windows, the cached frame (with the optional frame counter), screencaps."""

    config: PhoneConfig
    state: PhoneState
    _lock: threading.RLock
    _apps: dict[str, App]
    _front: str
    _recent: list[str]
    _recents_open: bool
    _screen_on: bool
    _unit: float
    _frame: Frame | None
    _sig: object
    _seq: int
    _black: bytes | None
    _counter_on: bool
    _tick_hz: float
    _base: tuple[object, Image.Image] | None  # (tree signature, picture without counter)
    _png_cache: tuple[Frame, bytes] | None

    if TYPE_CHECKING:  # the other parts of the phone define these

        def _zh(self) -> bool: ...
        def _starting(self) -> bool: ...
        def _open_recent(self, package: str) -> None: ...
        def _clear_recents(self) -> None: ...

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


__all__ = ["Display", "Frame"]
