"""Building blocks for app screens: bars, rows, buttons, fields and scrolling lists, in dp units."""

from __future__ import annotations

from collections.abc import Callable

from device_pool.sim import views as v
from device_pool.sim.apps.base import Ctx
from device_pool.sim.views import Bounds, Color, View

INK: Color = (32, 33, 36)
SUBTLE: Color = (95, 99, 104)
ACCENT: Color = (26, 115, 232)
DIVIDER: Color = (224, 224, 224)
WHITE: Color = (255, 255, 255)
SURFACE: Color = (243, 246, 252)
BAR_H = 64
ROW_H = 72


def page(ctx: Ctx, bg: Color = WHITE) -> View:
    """The content root below the status bar."""
    return View(v.FRAME, (0, ctx.top, ctx.width, ctx.height), bg=bg, rid="android:id/content")


def app_bar(ctx: Ctx, title: str, *, back: bool = True, bg: Color = WHITE) -> tuple[View, int]:
    """A toolbar with an optional up arrow and the title; returns it and its bottom edge."""
    top, h = ctx.top, ctx.dp(BAR_H)
    bar = View(v.VIEW_GROUP, (0, top, ctx.width, top + h), rid=f"{ctx.app.package}:id/toolbar", bg=bg)
    x = ctx.dp(20)
    if back:
        bar.add(View(v.IMAGE_BUTTON, (0, top, ctx.dp(56), top + h), desc=ctx.t("Navigate up", "向上导航"),
                     clickable=True, focusable=True, icon="back", fg=INK,
                     on_click=lambda: _back(ctx)))  # fmt: skip
        x = ctx.dp(64)
    bar.add(View(v.TEXT, (x, top, ctx.width - ctx.dp(16), top + h), text=title, size=ctx.dp(22), fg=INK,
                 rid=f"{ctx.app.package}:id/title"))  # fmt: skip
    return bar, top + h


def _back(ctx: Ctx) -> None:
    if not ctx.app.back():
        ctx.host.finish_app(ctx.app.package)


def label(ctx: Ctx, bounds: Bounds, text: str, *, size: float = 16, color: Color = INK, bold: bool = False,
          align: str = "left", rid: str = "", wrap: bool = False, desc: str = "") -> View:  # fmt: skip
    return View(v.TEXT, bounds, text=text, size=ctx.dp(size), fg=color, bold=bold, align=align,
                rid=rid, wrap=wrap, desc=desc)  # fmt: skip


def button(ctx: Ctx, bounds: Bounds, text: str, on_click: Callable[[], None], *, rid: str = "",
           primary: bool = True, desc: str = "", enabled: bool = True, size: float = 16) -> View:  # fmt: skip
    bg = (ACCENT if enabled else (200, 200, 200)) if primary else WHITE
    fg = WHITE if primary else ACCENT
    return View(v.BUTTON, bounds, text=text, rid=rid, desc=desc, clickable=enabled, focusable=True,
                enabled=enabled, bg=bg, fg=fg, border=None if primary else DIVIDER, size=ctx.dp(size),
                bold=True, align="center", radius=(bounds[3] - bounds[1]) // 2,
                on_click=on_click if enabled else None)  # fmt: skip


def edit(ctx: Ctx, bounds: Bounds, key: str, hint: str, *, rid: str = "", password: bool = False,
         size: float = 18, wrap: bool = False, boxed: bool = False) -> View:  # fmt: skip
    """An EditText bound to ``ctx.screen.fields[key]``; tapping it focuses it (the phone does that)."""
    screen = ctx.screen
    return View(v.EDIT, bounds, text=screen.fields.get(key, ""), hint=hint, rid=rid, password=password,
                clickable=True, long_clickable=True, focusable=True, focused=screen.focus == key,
                edit_key=key, size=ctx.dp(size), pad=ctx.dp(12), wrap=wrap,
                bg=SURFACE if boxed else None, radius=ctx.dp(24) if boxed else 0,
                border=DIVIDER if boxed else None)  # fmt: skip


def switch(ctx: Ctx, bounds: Bounds, checked: bool, on_toggle: Callable[[], None], *, rid: str,
           desc: str = "") -> View:  # fmt: skip
    return View(v.SWITCH, bounds, rid=rid, desc=desc, text=ctx.t("ON", "开启") if checked else ctx.t("OFF", "关闭"),
                checkable=True, checked=checked, clickable=True, focusable=True, icon="switch",
                on_click=on_toggle)  # fmt: skip


def fab(ctx: Ctx, text: str, on_click: Callable[[], None], *, rid: str) -> View:
    """An extended floating action button at the bottom right."""
    w, h, m = ctx.dp(170), ctx.dp(56), ctx.dp(20)
    b = (ctx.width - m - w, ctx.height - m - h - ctx.dp(16), ctx.width - m, ctx.height - m - ctx.dp(16))
    return View(v.BUTTON, b, text=text, rid=rid, desc=text, clickable=True, focusable=True,
                bg=ACCENT, fg=WHITE, size=ctx.dp(17), bold=True, align="center", radius=ctx.dp(18),
                on_click=on_click)  # fmt: skip


def divider(ctx: Ctx, y: int, x: int = 0) -> View:
    return View(v.VIEW, (x, y, ctx.width, y + max(1, ctx.dp(1) // 2 + 1)), bg=DIVIDER)


RowBuilder = Callable[[int, int], View]  # (top, bottom) -> the row's view


def scroll_list(ctx: Ctx, key: str, bounds: Bounds, rows: list[tuple[int, RowBuilder]], *,
                rid: str = "", cls: str = v.RECYCLER) -> View:  # fmt: skip
    """A list that scrolls by whole rows: only rows fully inside ``bounds`` exist in the tree.

    Snapping to rows means a view is either entirely on screen or absent, as uiautomator reports
    only visible nodes, and no clipping is needed when drawing.
    """
    _, top, _, bottom = bounds
    viewport = bottom - top
    heights = [h for h, _ in rows]
    max_first = len(rows)
    acc = 0
    while max_first > 0 and acc + heights[max_first - 1] <= viewport:
        max_first -= 1
        acc += heights[max_first]
    first = min(max(0, ctx.screen.scroll.get(key, 0)), max_first)
    can_scroll = max_first > 0
    screen = ctx.screen

    def on_scroll(delta: int) -> None:
        avg = max(1, sum(heights) // max(1, len(heights)))
        step = round(delta / avg)
        if step == 0 and abs(delta) > avg // 3:
            step = 1 if delta > 0 else -1
        screen.scroll[key] = min(max(0, first + step), max_first)

    node = View(cls, bounds, rid=rid, scrollable=can_scroll, focusable=can_scroll,
                on_scroll=on_scroll if can_scroll else None)  # fmt: skip
    y = top
    for h, build in rows[first:]:
        if y + h > bottom:
            break
        node.add(build(y, y + h))
        y += h
    return node


def list_row(ctx: Ctx, top: int, bottom: int, title: str, subtitle: str = "", *,
             on_click: Callable[[], None] | None = None, rid: str = "", avatar: str = "",
             avatar_color: Color = ACCENT, trailing: View | None = None,
             on_long_click: Callable[[], None] | None = None, title_rid: str = "") -> View:  # fmt: skip
    """A two-line list row with an optional round avatar and a trailing widget."""
    row = View(v.LINEAR, (0, top, ctx.width, bottom), rid=rid, clickable=on_click is not None,
               focusable=on_click is not None, on_click=on_click,
               long_clickable=on_long_click is not None, on_long_click=on_long_click)  # fmt: skip
    x = ctx.dp(20)
    if avatar:
        s = ctx.dp(44)
        cy = (top + bottom) // 2
        row.add(View(v.IMAGE, (x, cy - s // 2, x + s, cy + s // 2), icon=f"avatar:{avatar}",
                     icon_color=avatar_color))  # fmt: skip
        x += s + ctx.dp(16)
    right = ctx.width - ctx.dp(20) - (ctx.dp(64) if trailing is not None else 0)
    pkg = ctx.app.package
    if subtitle:
        mid = (top + bottom) // 2
        row.add(label(ctx, (x, top + ctx.dp(8), right, mid + ctx.dp(2)), title, size=18,
                      rid=title_rid or f"{pkg}:id/title"))  # fmt: skip
        row.add(label(ctx, (x, mid + ctx.dp(2), right, bottom - ctx.dp(8)), subtitle, size=14, color=SUBTLE,
                      rid=f"{pkg}:id/summary"))  # fmt: skip
    else:
        row.add(label(ctx, (x, top, right, bottom), title, size=18, rid=title_rid or f"{pkg}:id/title"))
    if trailing is not None:
        row.add(trailing)
    row.add(divider(ctx, bottom - max(1, ctx.dp(1) // 2 + 1), x))
    return row


__all__ = [
    "ACCENT", "BAR_H", "DIVIDER", "INK", "ROW_H", "SUBTLE", "SURFACE", "WHITE", "app_bar", "button",
    "divider", "edit", "fab", "label", "list_row", "page", "scroll_list", "switch",
]  # fmt: skip
