"""The virtual phone's input: touches and gestures, keys, text into the focused field, input methods.

A part of ``VirtualPhone`` (``phone.py``), which holds the state these methods share; every public
method takes the phone's lock. Input goes to the window tree the display builds (``display.py``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from device_pool.sim import keycodes as kc
from device_pool.sim import views
from device_pool.sim.apps import IME_SERVICES
from device_pool.sim.apps.base import App
from device_pool.sim.intents import LAUNCHER
from device_pool.sim.state import PhoneState
from device_pool.sim.views import Window

if TYPE_CHECKING:
    from device_pool.sim.phone import PhoneConfig


class InputManager:
    """Touches, keys and text, as Android's input dispatch delivers them to the window in front."""

    config: PhoneConfig
    state: PhoneState
    _lock: threading.RLock
    _apps: dict[str, App]
    _front: str
    _starting_until: dict[str, float]
    _recents_open: bool
    _screen_on: bool
    _unit: float

    if TYPE_CHECKING:  # the other parts of the phone define these

        def go_home(self) -> None: ...
        def finish_app(self, package: str) -> None: ...
        def _windows(self) -> list[Window]: ...

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


__all__ = ["InputManager"]
