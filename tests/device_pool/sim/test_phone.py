"""The virtual phone in-process: input, frames, the dump, intents, state and determinism."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from device_pool.sim import keycodes
from device_pool.sim.phone import ActivityNotFound, PhoneConfig, VirtualPhone
from tests.conditions import wait_until

SETTINGS = "com.android.settings"


def make_phone(tmp_path: Path, name: str = "phone", **config: object) -> VirtualPhone:
    config.setdefault("launch_delay_ms", 0)
    return VirtualPhone(tmp_path / name, PhoneConfig(**config))  # type: ignore[arg-type]


def tap_text(phone: VirtualPhone, text: str) -> None:
    """Tap the centre of the on-screen node showing ``text`` (as an agent reading the dump would)."""
    node = phone.find(text=text)
    assert node is not None, f"{text!r} is not on screen: {phone.ui_xml()}"
    phone.tap(*node.center)


def tap_id(phone: VirtualPhone, rid: str) -> None:
    node = phone.find(rid=rid)
    assert node is not None, f"{rid} is not on screen"
    phone.tap(*node.center)


def dump_nodes(phone: VirtualPhone) -> list[ET.Element]:
    return list(ET.fromstring(phone.ui_xml()).iter("node"))


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_boots_to_launcher_with_apps(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    assert phone.foreground() == (
        "com.android.launcher3",
        "com.android.launcher3.uioverrides.QuickstepLauncher",
    )
    labels = {n.get("text") for n in dump_nodes(phone) if n.get("clickable") == "true"}
    assert {"Settings", "Contacts", "Messages", "Notes", "Shop", "Bank"} <= labels
    assert phone.props["ro.serialno"] == "PFSIM0000"
    assert phone.props["sys.boot_completed"] == "1"


def test_tap_changes_frame_and_foreground(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    first = phone.frame()
    assert phone.frame() is first, "an unchanged tree must not redraw"
    tap_text(phone, "Settings")
    second = phone.frame()
    assert second.seq == first.seq + 1
    assert second.rgba != first.rgba
    assert phone.foreground() == (SETTINGS, "com.android.settings.Settings")


def test_tap_on_nothing_does_not_redraw(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    before = phone.frame()
    phone.tap(phone.config.width // 2, phone.config.height - 200)  # empty wallpaper
    assert phone.frame() is before


def test_ui_xml_format_and_bounds(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.start_activity(package=SETTINGS)
    xml = phone.ui_xml()
    assert xml.startswith(
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">"
    )
    root = ET.fromstring(xml)
    first = root[0]
    assert list(first.attrib) == [
        "index", "text", "resource-id", "class", "package", "content-desc", "checkable", "checked",
        "clickable", "enabled", "focusable", "focused", "scrollable", "long-clickable", "password",
        "selected", "bounds",
    ]  # fmt: skip
    assert first.get("bounds") == "[0,0][1080,2400]"
    assert first.get("package") == SETTINGS
    for node in root.iter("node"):
        nums = [int(x) for x in node.get("bounds", "").replace("][", ",").strip("[]").split(",")]
        assert 0 <= nums[0] <= nums[2] <= 1080 and 0 <= nums[1] <= nums[3] <= 2400


def test_text_is_drawn_inside_its_bounds(tmp_path: Path) -> None:
    """Each text node's region has dark ink; a region no node covers is plain background."""
    phone = make_phone(tmp_path)
    phone.start_activity(package=SETTINGS)
    image = phone.frame().image().convert("L")
    for text in ("Wi-Fi", "Bluetooth", "Airplane mode", "About phone"):
        node = phone.find(text=text)
        assert node is not None
        lo, hi = image.crop(node.bounds).getextrema()
        assert lo < 80 and hi > 200, f"no text drawn for {text!r}"
    lowest = max(n.bounds[3] for n in [phone.find(text="About phone")] if n)
    lo, hi = image.crop((0, lowest + 100, 1080, 2300)).getextrema()
    assert lo == hi == 255


def test_secure_window_is_black_until_login(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.start_activity(package="com.phonefleet.bank")
    frame = phone.frame()
    assert frame.secure
    assert frame.rgba == b"\x00\x00\x00\xff" * (1080 * 2400)
    assert phone.find(rid="com.phonefleet.bank:id/username") is not None, "the dump still sees the login"


def test_starting_window_then_app(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, launch_delay_ms=150)
    phone.start_activity(package=SETTINGS)
    assert phone.find(text="Wi-Fi") is None
    assert phone.find(text="Settings") is not None  # the splash names the app
    splash = phone.frame()
    wait_until(lambda: phone.find(text="Wi-Fi"), timeout=3, what="settings shown after the starting window")
    assert phone.frame().seq == splash.seq + 1


def test_keys_back_home_and_recents(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.start_activity(package=SETTINGS)
    tap_text(phone, "About phone")
    assert phone.find(text="Serial number") is not None
    phone.key(keycodes.BACK)
    assert phone.find(text="Airplane mode") is not None
    phone.key(keycodes.BACK)
    assert phone.foreground()[0] == "com.android.launcher3"
    phone.start_activity(package="com.phonefleet.notes")
    phone.key(keycodes.HOME)
    assert phone.foreground()[0] == "com.android.launcher3"
    phone.key(keycodes.APP_SWITCH)
    assert phone.find(text="Recent apps") is not None
    tap_text(phone, "Notes")
    assert phone.foreground()[0] == "com.phonefleet.notes"


def test_text_entry_del_and_clear(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.type_text("ignored")  # nothing focused on the home screen
    phone.start_activity(package="com.android.contacts")
    tap_text(phone, "Create contact")
    phone.type_text("Abc")
    phone.key(keycodes.DEL)
    name = phone.find(rid="com.android.contacts:id/editor_name")
    assert name is not None and name.text == "Ab" and name.focused
    phone.clear_text()
    assert phone.find(rid="com.android.contacts:id/editor_name").text == ""  # type: ignore[union-attr]
    assert phone.find(text="Name") is not None, "an empty field shows its hint"


def test_swipe_scrolls_and_hides_offscreen_rows(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.start_activity(package="com.phonefleet.shop")
    tap_id(phone, "com.phonefleet.shop:id/ad_close")
    lst = phone.find(rid="com.phonefleet.shop:id/product_list")
    assert lst is not None and lst.scrollable
    first_names = [n.text for n in lst.walk() if n.rid == "com.phonefleet.shop:id/product_name"]
    assert "Umbrella" not in first_names
    for _ in range(6):
        phone.swipe(540, 2000, 540, 800, 300)
    lst = phone.find(rid="com.phonefleet.shop:id/product_list")
    names = [n.text for n in lst.walk() if n.rid == "com.phonefleet.shop:id/product_name"]  # type: ignore[union-attr]
    assert names[0] != first_names[0] and "Headphones" in names
    for node in lst.walk():  # type: ignore[union-attr]
        assert lst.bounds[1] <= node.bounds[1] and node.bounds[3] <= lst.bounds[3]  # type: ignore[union-attr]


def test_intents(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    wifi = "com.android.settings/com.android.settings.Settings$WifiSettingsActivity"
    assert phone.start_activity(action="android.settings.WIFI_SETTINGS") == wifi
    assert phone.find(text="Use Wi-Fi") is not None
    assert (
        phone.start_activity("com.android.settings/.Settings")
        == "com.android.settings/com.android.settings.Settings"
    )
    assert phone.start_activity("com.phonefleet.notes/com.phonefleet.notes.MainActivity").endswith(
        "MainActivity"
    )
    got = phone.start_activity(action="android.intent.action.VIEW", data="smsto:+15550100")
    assert got == "com.android.messaging/com.android.messaging.ui.conversation.ConversationActivity"
    assert phone.start_activity(
        action="android.intent.action.MAIN", categories=["android.intent.category.HOME"]
    )
    assert phone.foreground()[0] == "com.android.launcher3"
    assert phone.launcher_activity(SETTINGS) == "com.android.settings/.Settings"
    with pytest.raises(ActivityNotFound):
        phone.start_activity("com.android.settings/.Nope")
    with pytest.raises(ActivityNotFound):
        phone.start_activity(package="com.example.missing")
    with pytest.raises(ActivityNotFound):
        phone.start_activity(action="android.intent.action.VIEW", data="https://example.com")


def test_force_stop_resets_ui_but_not_data(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.start_activity(package=SETTINGS)
    tap_text(phone, "About phone")
    phone.force_stop(SETTINGS)
    assert phone.foreground()[0] == "com.android.launcher3"
    phone.settings_put("global", "wifi_on", "0")
    phone.start_activity(package=SETTINGS)
    assert phone.find(text="Airplane mode") is not None
    assert phone.settings_get("global", "wifi_on") == "0"
    assert phone.clear_package("com.phonefleet.shop") and not phone.clear_package("com.example.none")


def test_same_seed_same_phone_and_factory_reset(tmp_path: Path) -> None:
    a, b = make_phone(tmp_path, "a", seed=7), make_phone(tmp_path, "b", seed=7)
    assert a.frame().rgba == b.frame().rgba
    assert a.ui_xml() == b.ui_xml()
    assert tree_files(a.fs_root) == tree_files(b.fs_root)
    a.start_activity(package="com.android.contacts")
    b.start_activity(package="com.android.contacts")
    assert a.frame().rgba == b.frame().rgba
    other = make_phone(tmp_path, "c", seed=8)
    assert other.contacts() != a.contacts()

    a.settings_put("global", "wifi_on", "0")
    a.state.add_contact("Temp Person", "123")
    a.factory_reset()
    assert a.settings_get("global", "wifi_on") == "1"
    assert a.contacts() == b.contacts()
    assert tree_files(a.fs_root) == tree_files(b.fs_root)
    assert a.foreground()[0] == "com.android.launcher3"


def test_state_persists_across_instances(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.settings_put("secure", "custom_key", "x y")
    phone.state.add_contact("Zoe Quinn", "+1 555 0199")
    again = make_phone(tmp_path)
    assert again.settings_get("secure", "custom_key") == "x y"
    assert any(c["display_name"] == "Zoe Quinn" for c in again.contacts())
    assert again.settings_delete("secure", "custom_key") and not again.settings_delete("secure", "custom_key")


def test_host_path_stays_inside_root(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    root = phone.fs_root
    assert phone.host_path("/../../etc/passwd") == root / "etc/passwd"
    assert phone.host_path("/sdcard/Notes/a.txt") == root / "storage/emulated/0/Notes/a.txt"
    assert phone.host_path("/storage/self/primary") == root / "storage/emulated/0"
    assert phone.host_path("/") == root
    assert phone.is_read_only("/system/bin/sh") and phone.is_read_only("/proc/cpuinfo")
    assert not phone.is_read_only("/sdcard/x") and not phone.is_read_only("/data/local/tmp/x")


def test_ime(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    adb = "com.android.adbkeyboard/.AdbIME"
    assert phone.ime_current() == "com.android.inputmethod.latin/.LatinIME"
    assert adb in phone.ime_list() and adb not in phone.ime_list(enabled_only=True)
    assert not phone.ime_set(adb)
    assert phone.ime_enable(adb) and phone.ime_set(adb)
    assert phone.ime_current() == adb
    assert phone.settings_get("secure", "default_input_method") == adb
    assert phone.ime_enable(adb, False) and phone.ime_current() != adb
    assert not phone.ime_enable("com.example/.Nope")


def test_screencaps(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    raw = phone.screencap_raw()
    assert struct.unpack("<4I", raw[:16]) == (1080, 2400, 1, 0)
    assert raw[16:] == phone.frame().rgba
    png = Image.open(io.BytesIO(phone.screencap_png()))
    assert png.size == (1080, 2400)
    assert png.convert("RGBA").tobytes() == phone.frame().rgba
    assert phone.frame().image().getextrema()[3] == (255, 255), "every pixel is opaque"


def test_small_screen(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, width=720, height=1600, density=320)
    assert phone.frame().image().size == (720, 1600)
    tap_text(phone, "Settings")
    assert phone.foreground()[0] == SETTINGS
    switch = phone.find(rid="com.android.settings:id/switch_wifi")
    assert switch is not None and switch.bounds[2] <= 720
    phone.tap(*switch.center)
    assert phone.settings_get("global", "wifi_on") == "0"


def test_power_key_blanks_screen(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.key(keycodes.POWER)
    assert set(phone.frame().rgba[:400]) == {0, 255}
    phone.key(keycodes.WAKEUP)
    assert phone.frame().rgba[:4] != b"\x00\x00\x00\xff"


def test_keycode_table() -> None:
    assert keycodes.keycode_from_string("KEYCODE_BACK") == 4
    assert keycodes.keycode_from_string("back") == 4
    assert keycodes.keycode_from_string("4") == 4
    assert keycodes.keycode_from_string("KEYCODE_4") == 11
    assert keycodes.keycode_from_string("KEYCODE_A") == 29
    assert keycodes.keycode_from_string("APP_SWITCH") == 187
    assert keycodes.keycode_from_string("NOPE") is None
    assert keycodes.keycode_to_string(67) == "KEYCODE_DEL"
    assert keycodes.keycode_to_string(9999) == "9999"


def test_concurrent_input_and_frames(tmp_path: Path) -> None:
    """Shell workers call the phone from many threads at once; nothing may raise or tear a frame."""
    import threading

    phone = make_phone(tmp_path)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for _ in range(15):
                if i % 2:
                    phone.start_activity(package=SETTINGS)
                    phone.key(keycodes.HOME)
                else:
                    frame = phone.frame()
                    assert len(frame.rgba) == frame.width * frame.height * 4
                    phone.ui_xml()
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
