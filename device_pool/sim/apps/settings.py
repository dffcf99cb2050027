"""Settings (com.android.settings): Wi-Fi, Bluetooth and Airplane mode switches backed by `settings global`.

The switches read the settings on every build, so `settings put global wifi_on 0` from the shell
shows at once. Turning Airplane mode on from the UI also turns Wi-Fi and Bluetooth off (and back
when it goes off), as Android does; a plain `settings put` changes only the key it names.
"""

from __future__ import annotations

from device_pool.sim import views as v
from device_pool.sim.apps import widgets as w
from device_pool.sim.apps.base import App, Ctx, Screen
from device_pool.sim.views import View

PKG = "com.android.settings"
NETWORKS = ["HomeNet-5G", "Cafe_Guest", "Office-WiFi", "NETGEAR42", "TP-Link_7F2A"]
PAIRED = ["Galaxy Buds", "Car Audio", "JBL Flip 5"]
LOCALES = [("en-US", "English (United States)"), ("zh-CN", "中文 (简体)")]


class SettingsApp(App):
    package = PKG
    label_en, label_zh = "Settings", "设置"
    icon_letter, icon_color = "S", (95, 99, 104)
    activities = {  # noqa: RUF012
        f"{PKG}.Settings": "main",
        f"{PKG}.Settings$WifiSettingsActivity": "wifi",
        f"{PKG}.Settings$BluetoothSettingsActivity": "bluetooth",
        f"{PKG}.Settings$MyDeviceInfoActivity": "about",
        f"{PKG}.Settings$DisplaySettingsActivity": "display",
        f"{PKG}.Settings$LanguageSettingsActivity": "language",
    }

    # ---- settings helpers
    def _on(self, key: str) -> bool:
        return self.host.state.flag("global", key)

    def _set(self, key: str, on: bool) -> None:
        self.host.state.settings_put("global", key, "1" if on else "0")

    def toggle_wifi(self) -> None:
        self._set("wifi_on", not self._on("wifi_on"))

    def toggle_bluetooth(self) -> None:
        self._set("bluetooth_on", not self._on("bluetooth_on"))

    def toggle_airplane(self) -> None:
        data = self.data()
        if not self._on("airplane_mode_on"):
            data["before_airplane"] = {
                "wifi_on": self._on("wifi_on"),
                "bluetooth_on": self._on("bluetooth_on"),
            }
            self._set("airplane_mode_on", True)
            self._set("wifi_on", False)
            self._set("bluetooth_on", False)
        else:
            self._set("airplane_mode_on", False)
            for key, was in data.pop("before_airplane", {}).items():
                self._set(key, bool(was))
        self.save_data(data)

    def connected_ssid(self) -> str | None:
        if not self._on("wifi_on"):
            return None
        return self.data().get("ssid", NETWORKS[0])

    # ---- screens
    def build_main(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Settings", "设置"), back=False)
        root.add(bar)
        ssid = self.connected_ssid()
        on, off = ctx.t("On", "已开启"), ctx.t("Off", "已关闭")
        sw = ctx.dp(56)

        def trailing(top: int, bottom: int, checked: bool, toggle, rid: str, desc: str) -> View:
            x = ctx.width - ctx.dp(20) - sw
            return w.switch(ctx, (x, top + ctx.dp(16), x + sw, bottom - ctx.dp(16)), checked, toggle,
                            rid=f"{PKG}:id/{rid}", desc=desc)  # fmt: skip

        def row(key: str, title: str, sub: str, letter: str, color, **kw):
            return lambda top, bottom: w.list_row(ctx, top, bottom, title, sub, avatar=letter,
                                                  avatar_color=color, rid=f"{PKG}:id/{key}",
                                                  trailing=kw.get("trailing", lambda t, b: None)(top, bottom),
                                                  on_click=kw.get("on_click"))  # fmt: skip

        wifi_title, bt_title, air_title = (
            "Wi-Fi",
            ctx.t("Bluetooth", "蓝牙"),
            ctx.t("Airplane mode", "飞行模式"),
        )
        rows = [
            row("wifi_row", wifi_title, ssid or off, "W", (26, 115, 232),
                trailing=lambda t, b: trailing(t, b, self._on("wifi_on"), self.toggle_wifi, "switch_wifi", wifi_title),
                on_click=lambda: self.push("wifi")),
            row("bluetooth_row", bt_title, on if self._on("bluetooth_on") else off, "B", (0, 137, 123),
                trailing=lambda t, b: trailing(t, b, self._on("bluetooth_on"), self.toggle_bluetooth,
                                               "switch_bluetooth", bt_title),
                on_click=lambda: self.push("bluetooth")),
            row("airplane_row", air_title, on if self._on("airplane_mode_on") else off, "A", (234, 134, 0),
                trailing=lambda t, b: trailing(t, b, self._on("airplane_mode_on"), self.toggle_airplane,
                                               "switch_airplane", air_title),
                on_click=self.toggle_airplane),
            row("display_row", ctx.t("Display", "显示"), ctx.t("Dark theme, font size", "深色主题、字体大小"), "D",
                (121, 85, 200), on_click=lambda: self.push("display")),
            row("language_row", ctx.t("Language", "语言"), dict(LOCALES).get(self._locale(), "English"), "L",
                (52, 168, 83), on_click=lambda: self.push("language")),
            row("about_row", ctx.t("About phone", "关于手机"), self.host.props.get("ro.product.model", ""), "i",
                (95, 99, 104), on_click=lambda: self.push("about")),
        ]  # fmt: skip
        items = [(ctx.dp(w.ROW_H + 8), r) for r in rows]
        root.add(
            w.scroll_list(ctx, "main", (0, y, ctx.width, ctx.height), items, rid=f"{PKG}:id/recycler_view")
        )
        return root

    def _locale(self) -> str:
        return self.host.state.settings_get("system", "system_locales") or "en-US"

    def _toggle_page(
        self, ctx: Ctx, title: str, master: str, checked: bool, toggle, rid: str
    ) -> tuple[View, int]:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, title)
        root.add(bar)
        h = ctx.dp(80)
        sw = ctx.dp(56)
        x = ctx.width - ctx.dp(36) - sw
        master_row = View(v.LINEAR, (ctx.dp(16), y + ctx.dp(8), ctx.width - ctx.dp(16), y + ctx.dp(8) + h),
                          bg=(232, 240, 254) if checked else (241, 243, 244), radius=ctx.dp(28),
                          clickable=True, focusable=True, on_click=toggle)  # fmt: skip
        master_row.add(w.label(ctx, (ctx.dp(40), y + ctx.dp(8), x, y + ctx.dp(8) + h), master, size=19))
        master_row.add(w.switch(ctx, (x, y + ctx.dp(24), x + sw, y + ctx.dp(8) + h - ctx.dp(16)), checked,
                                toggle, rid=f"{PKG}:id/{rid}", desc=title))  # fmt: skip
        root.add(master_row)
        return root, y + h + ctx.dp(24)

    def build_wifi(self, ctx: Ctx) -> View:
        on = self._on("wifi_on")
        root, y = self._toggle_page(
            ctx, "Wi-Fi", ctx.t("Use Wi-Fi", "使用 WLAN"), on, self.toggle_wifi, "switch_wifi"
        )
        if not on:
            root.add(w.label(ctx, (ctx.dp(24), y, ctx.width - ctx.dp(24), y + ctx.dp(48)),
                             ctx.t("To see available networks, turn Wi-Fi on.", "要查看可用网络，请开启 WLAN。"),
                             size=15, color=w.SUBTLE))  # fmt: skip
            return root
        current = self.connected_ssid()

        def pick(name: str) -> None:
            data = self.data()
            data["ssid"] = name
            self.save_data(data)

        rows = []
        for name in NETWORKS:
            sub = (
                ctx.t("Connected", "已连接")
                if name == current
                else ctx.t("Saved", "已保存")
                if name == NETWORKS[0]
                else ""
            )
            rows.append((ctx.dp(w.ROW_H), lambda t, b, n=name, s=sub: w.list_row(
                ctx, t, b, n, s, rid=f"{PKG}:id/wifi_network", on_click=lambda n=n: pick(n))))  # fmt: skip
        root.add(
            w.scroll_list(ctx, "networks", (0, y, ctx.width, ctx.height), rows, rid=f"{PKG}:id/recycler_view")
        )
        return root

    def build_bluetooth(self, ctx: Ctx) -> View:
        on = self._on("bluetooth_on")
        title = ctx.t("Bluetooth", "蓝牙")
        root, y = self._toggle_page(ctx, title, ctx.t("Use Bluetooth", "使用蓝牙"), on, self.toggle_bluetooth,
                                    "switch_bluetooth")  # fmt: skip
        if on:
            root.add(w.label(ctx, (ctx.dp(24), y, ctx.width, y + ctx.dp(40)), ctx.t("Paired devices", "已配对的设备"),
                             size=15, color=w.ACCENT, bold=True))  # fmt: skip
            y += ctx.dp(40)
            for name in PAIRED:
                root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), name, ctx.t("Saved", "已保存"),
                                    rid=f"{PKG}:id/paired_device"))  # fmt: skip
                y += ctx.dp(w.ROW_H)
        return root

    def build_display(self, ctx: Ctx) -> View:
        dark = (self.host.state.settings_get("secure", "ui_night_mode") or "1") == "2"

        def toggle() -> None:
            self.host.state.settings_put("secure", "ui_night_mode", "1" if dark else "2")

        root, _ = self._toggle_page(ctx, ctx.t("Display", "显示"), ctx.t("Dark theme", "深色主题"), dark, toggle,
                                    "switch_dark_theme")  # fmt: skip
        return root

    def build_language(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("Language", "语言"))
        root.add(bar)
        current = self._locale()
        for tag, name in LOCALES:

            def choose(tag: str = tag) -> None:
                self.host.state.settings_put("system", "system_locales", tag)

            root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), name, ctx.t("Selected", "已选择") if tag == current else "",
                                rid=f"{PKG}:id/locale", on_click=choose))  # fmt: skip
            y += ctx.dp(w.ROW_H)
        return root

    def build_about(self, ctx: Ctx) -> View:
        root = w.page(ctx)
        bar, y = w.app_bar(ctx, ctx.t("About phone", "关于手机"))
        root.add(bar)
        p = self.host.props
        facts = [
            (ctx.t("Device name", "设备名称"), self.host.state.settings_get("global", "device_name") or ""),
            (ctx.t("Model", "型号"), p.get("ro.product.model", "")),
            (ctx.t("Android version", "Android 版本"), p.get("ro.build.version.release", "")),
            (ctx.t("Serial number", "序列号"), p.get("ro.serialno", "")),
            (ctx.t("Build number", "版本号"), p.get("ro.build.display.id", "")),
        ]
        for title, value in facts:
            root.add(w.list_row(ctx, y, y + ctx.dp(w.ROW_H), title, value, rid=f"{PKG}:id/about_item"))
            y += ctx.dp(w.ROW_H)
        return root

    def create_screen(self, activity: str, data: str | None) -> Screen:
        return Screen(name=self.activities[activity], activity=activity)
