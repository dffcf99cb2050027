"""The home screen (com.android.launcher3): a grid of app icons with their labels over a wallpaper.

The wallpaper is a photo-like picture fixed by the phone's size and seed (``imagery.wallpaper``),
held in the tree as a full-screen ImageView behind the workspace; the status bar is transparent
over it, as on a real launcher.
"""

from __future__ import annotations

from device_pool.sim import views as v
from device_pool.sim.apps.base import App, Ctx
from device_pool.sim.views import View


class Launcher(App):
    package = "com.android.launcher3"
    label_en, label_zh = "Launcher", "启动器"
    icon_letter, icon_color = "L", (60, 60, 60)
    activities = {"com.android.launcher3.uioverrides.QuickstepLauncher": "home"}  # noqa: RUF012
    launcher = ""  # HOME, not in its own grid
    status_bg, status_fg = None, (255, 255, 255)  # no bar colour: the wallpaper shows through

    def build_home(self, ctx: Ctx) -> View:
        layer = View(v.FRAME, (0, 0, ctx.width, ctx.height), rid="com.android.launcher3:id/drag_layer")
        layer.add(View(v.IMAGE, (0, 0, ctx.width, ctx.height), icon=f"wallpaper:{self.host.seed}"))
        root = View(v.FRAME, (0, ctx.top, ctx.width, ctx.height), rid="com.android.launcher3:id/workspace")
        layer.add(root)
        cols = 4
        cell_w, cell_h = ctx.width // cols, ctx.dp(104)
        y0 = ctx.top + ctx.dp(28)
        for i, app in enumerate(self.host.launchable_apps()):
            row, col = divmod(i, cols)
            left, top = col * cell_w, y0 + row * cell_h
            label = app.label(ctx.zh)
            root.add(View(v.TEXT, (left, top, left + cell_w, top + cell_h), text=label, desc=label,
                          clickable=True, long_clickable=True, focusable=True, icon=f"app:{app.icon_letter}",
                          icon_color=app.icon_color, fg=(255, 255, 255), size=ctx.dp(14), align="center",
                          on_click=lambda p=app.package: self.host.start_activity(package=p)))  # fmt: skip
        return layer
