"""App names to packages, launching apps, the foreground app, and the uiautomator dump."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from device_pool.driver import AdbDevice, AppCatalog, UnknownApp
from device_pool.driver.dumpsys import parse_focused_window, parse_resumed_activity, parse_wm_size
from tests.aio import run
from tests.conditions import wait_until

SETTINGS = ("com.android.settings", "com.android.settings.Settings")


def test_catalog_resolves_english_chinese_and_package_names() -> None:
    catalog = AppCatalog()
    assert catalog.resolve("Settings") == "com.android.settings"
    assert catalog.resolve(" 设置 ") == "com.android.settings"
    assert catalog.resolve("google maps") == catalog.resolve("Google-Maps") == "com.google.android.apps.maps"
    assert catalog.resolve("com.example.app") == "com.example.app"
    assert catalog.resolve("Nonexistent Thing") is None
    custom = AppCatalog({"com.example.shop": ("Shop", "商店")})
    assert custom.resolve("商店") == "com.example.shop"


def test_dumpsys_parsers_read_android_text() -> None:
    """Lines as Android 13 prints them (the sim's own output is checked by the tests below)."""
    assert parse_wm_size("Physical size: 1080x2400\nOverride size: 720x1600\n") == (720, 1600)
    assert parse_wm_size("Physical size: 1080x2400\n") == (1080, 2400)
    assert (
        parse_focused_window(
            "  mCurrentFocus=Window{5f3a1c u0 com.android.settings/com.android.settings.Settings}\n"
        )
        == SETTINGS
    )
    assert parse_focused_window("  mCurrentFocus=Window{1d2 u0 NotificationShade}\n") is None
    assert (
        parse_resumed_activity(
            "    topResumedActivity=ActivityRecord{9b2 u0 com.android.settings/.Settings t12}\n"
        )
        == SETTINGS
    )


def test_home_screen_is_the_launcher(fresh_device: AdbDevice) -> None:
    package, _ = run(fresh_device.foreground())
    assert package == "com.android.launcher3"


@pytest.mark.parametrize(
    "name", ["Settings", "设置", "com.android.settings", "com.android.settings/.Settings"]
)
def test_launch_by_name_package_or_component(fresh_device: AdbDevice, name: str) -> None:
    assert run(fresh_device.launch(name)) == "com.android.settings"
    wait_until(lambda: run(fresh_device.foreground()) == SETTINGS, timeout=10, what="Settings in front")


def test_a_name_missing_from_the_catalog_launches_by_its_home_screen_label(fresh_phone, connect) -> None:
    device = connect(fresh_phone, apps=AppCatalog(include_known=False))
    assert run(device.launch("shop")) == "com.phonefleet.shop"
    assert run(device.foreground())[0] == "com.phonefleet.shop"


def test_launch_unknown_name_raises_unknown_app(device: AdbDevice) -> None:
    with pytest.raises(UnknownApp) as info:
        run(device.launch("Definitely Not An App"))
    assert not info.value.retryable


def test_launch_missing_package_raises_unknown_app(device: AdbDevice) -> None:
    with pytest.raises(UnknownApp) as info:
        run(device.launch("com.example.not.installed"))
    assert "monkey" in (info.value.command or "")
    assert info.value.output


def test_ui_dump_returns_the_view_tree(device: AdbDevice) -> None:
    xml = run(device.ui_dump())
    root = ET.fromstring(xml)
    assert root.tag == "hierarchy"
    assert root.iter("node") is not None
    # The temporary file is gone again.
    listing = run(device.shell("ls /data/local/tmp"))
    assert "phonefleet-ui-" not in listing.stdout
