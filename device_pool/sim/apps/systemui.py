"""System UI: the status bar, an app's starting window and the recents screen."""

from __future__ import annotations

from collections.abc import Callable

from device_pool.sim import views as v
from device_pool.sim.apps.base import App
from device_pool.sim.state import EPOCH_BASE_MS, PhoneState
from device_pool.sim.views import Color, View

PACKAGE = "com.android.systemui"
STATUS_BAR_DP = 28


def clock_text(seed: int) -> str:
    """The status bar time: fixed per seed, so frames do not change every minute."""
    minutes = (EPOCH_BASE_MS // 60_000 + 90 + (seed * 37) % 600) % (24 * 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def status_bar(state: PhoneState, seed: int, width: int, unit: float, bg: Color | None, fg: Color) -> View:
    h = round(STATUS_BAR_DP * unit)
    bar = View(v.FRAME, (0, 0, width, h), package=PACKAGE, bg=bg, rid="com.android.systemui:id/status_bar")
    pad, icon = round(16 * unit), round(18 * unit)
    bar.add(View(v.TEXT, (pad, 0, pad + round(80 * unit), h), text=clock_text(seed), fg=fg,
                 size=round(14 * unit), bold=True, rid="com.android.systemui:id/clock",
                 package=PACKAGE))  # fmt: skip
    icons: list[tuple[str, str]] = []
    if state.flag("global", "bluetooth_on"):
        icons.append(("bluetooth", "Bluetooth on."))
    if state.flag("global", "airplane_mode_on"):
        icons.append(("airplane", "Airplane mode on."))
    else:
        icons.append(("signal", "Phone four bars."))
    if state.flag("global", "wifi_on"):
        icons.append(("wifi", "Wifi signal full."))
    icons.append(("battery", "Battery 87 percent."))
    x = width - pad - round(34 * unit)
    bar.add(View(v.TEXT, (x, 0, width - pad, h), text="87%", fg=fg, size=round(13 * unit), align="right",
                 rid="com.android.systemui:id/battery_percentage_view", package=PACKAGE))  # fmt: skip
    for kind, desc in reversed(icons):
        x -= icon + round(4 * unit)
        bar.add(View(v.IMAGE, (x, (h - icon) // 2, x + icon, (h + icon) // 2), desc=desc, icon=kind,
                     fg=fg, package=PACKAGE))  # fmt: skip
    return bar


def starting_window(app: App, width: int, height: int, unit: float, zh: bool) -> View:
    """What shows while an app launches: its icon and name on a plain background (a splash)."""
    root = View(v.FRAME, (0, 0, width, height), package=app.package, bg=(250, 250, 250))
    side = round(96 * unit)
    cx, cy = width // 2, height // 2
    root.add(View(v.IMAGE, (cx - side // 2, cy - side, cx + side // 2, cy), icon=f"avatar:{app.icon_letter}",
                  icon_color=app.icon_color, package=app.package))  # fmt: skip
    root.add(View(v.TEXT, (0, cy + round(16 * unit), width, cy + round(60 * unit)), text=app.label(zh),
                  size=round(22 * unit), fg=(32, 33, 36), align="center", package=app.package))  # fmt: skip
    return root


def recents(apps: list[App], width: int, height: int, top: int, unit: float, zh: bool,
            open_app: Callable[[str], None], clear_all: Callable[[], None]) -> View:  # fmt: skip
    """The overview: one card per running app, newest first, and a Clear all button."""
    pkg = "com.android.launcher3"
    root = View(v.FRAME, (0, 0, width, height), package=pkg, bg=(60, 64, 72))
    title = "Recent apps" if not zh else "最近使用的应用"
    root.add(View(v.TEXT, (0, top + round(16 * unit), width, top + round(64 * unit)), text=title,
                  fg=(255, 255, 255), size=round(22 * unit), align="center", package=pkg))  # fmt: skip
    y = top + round(80 * unit)
    card_h, m = round(96 * unit), round(24 * unit)
    if not apps:
        empty = "No recent items" if not zh else "近期没有任何内容"
        root.add(View(v.TEXT, (0, height // 2 - card_h // 2, width, height // 2 + card_h // 2), text=empty,
                      fg=(230, 230, 230), size=round(18 * unit), align="center", package=pkg))  # fmt: skip
    for app in apps:
        if y + card_h > height - round(120 * unit):
            break
        card = View(v.FRAME, (m, y, width - m, y + card_h), package=pkg, clickable=True, focusable=True,
                    bg=(255, 255, 255), radius=round(16 * unit), desc=app.label(zh),
                    rid="com.android.launcher3:id/snapshot",
                    on_click=lambda p=app.package: open_app(p))  # fmt: skip
        s = round(48 * unit)
        card.add(View(v.IMAGE, (m + m, y + (card_h - s) // 2, m + m + s, y + (card_h + s) // 2),
                      icon=f"avatar:{app.icon_letter}", icon_color=app.icon_color, package=pkg))  # fmt: skip
        card.add(View(v.TEXT, (m * 2 + s + m, y, width - m * 2, y + card_h), text=app.label(zh),
                      size=round(20 * unit), fg=(32, 33, 36), package=pkg,
                      rid="com.android.launcher3:id/title"))  # fmt: skip
        root.add(card)
        y += card_h + round(16 * unit)
    if apps:
        bw, bh = round(160 * unit), round(48 * unit)
        b = (
            width // 2 - bw // 2,
            height - round(96 * unit),
            width // 2 + bw // 2,
            height - round(96 * unit) + bh,
        )
        root.add(View(v.BUTTON, b, text="Clear all" if not zh else "全部清除", package=pkg, clickable=True,
                      focusable=True, bg=(255, 255, 255), fg=(32, 33, 36), radius=bh // 2, align="center",
                      size=round(16 * unit), bold=True, rid="com.android.launcher3:id/clear_all",
                      on_click=clear_all))  # fmt: skip
    return root


__all__ = ["PACKAGE", "STATUS_BAR_DP", "clock_text", "recents", "starting_window", "status_bar"]
