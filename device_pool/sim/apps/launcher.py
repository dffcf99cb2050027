"""The home screen (com.android.launcher3): a grid of app icons with their labels."""

from __future__ import annotations

from device_pool.sim import views as v
from device_pool.sim.apps.base import App, Ctx
from device_pool.sim.views import View

WALLPAPER = (28, 54, 92)


class Launcher(App):
    package = "com.android.launcher3"
    label_en, label_zh = "Launcher", "启动器"
    icon_letter, icon_color = "L", (60, 60, 60)
    activities = {"com.android.launcher3.uioverrides.QuickstepLauncher": "home"}  # noqa: RUF012
    launcher = ""  # HOME, not in its own grid
    status_bg, status_fg = WALLPAPER, (255, 255, 255)

    def build_home(self, ctx: Ctx) -> View:
        root = View(v.FRAME, (0, ctx.top, ctx.width, ctx.height), bg=WALLPAPER,
                    rid="com.android.launcher3:id/workspace")  # fmt: skip
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
        return root
