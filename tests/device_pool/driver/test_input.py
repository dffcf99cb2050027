"""Taps, swipes, keys and text on the virtual phone, checked through its own view tree (uiautomator)."""

from __future__ import annotations

import pytest

from device_pool.driver import ADB_KEYBOARD_IME, AdbDevice, TextInputUnsupported
from tests.aio import run
from tests.conditions import wait_until
from tests.conftest import Connect
from tests.processes import SimPhones
from tests.ui import Node, find, nodes, texts

LAUNCHER = "com.android.launcher3"
NOTES = "com.phonefleet.notes"
SHOP = "com.phonefleet.shop"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
EMPTY_TITLE = "Title"  # an empty field reports its hint, as uiautomator does


def wait_for(device: AdbDevice, *, text: str | None = None, rid: str | None = None) -> Node:
    """Wait until the screen shows the node (an app's starting window ignores taps until then)."""
    return wait_until(
        lambda: find(run(device.ui_dump()), text=text, rid=rid), timeout=10, what=f"{text or rid} on screen"
    )


def in_front(device: AdbDevice, package: str) -> None:
    wait_until(lambda: run(device.foreground())[0] == package, timeout=10, what=f"{package} in front")


def open_note_editor(device: AdbDevice) -> None:
    run(device.launch("Notes"))
    run(device.tap(*wait_for(device, rid="fab_new").center))
    wait_for(device, rid="note_title")


def note_title(device: AdbDevice) -> str:
    return texts(run(device.ui_dump()), "note_title")[0]


def current_ime(device: AdbDevice) -> str:
    return run(device.shell("settings get secure default_input_method")).stdout.strip()


def test_tap_opens_an_app_from_the_home_screen(fresh_device: AdbDevice) -> None:
    icon = find(run(fresh_device.ui_dump()), text="Notes")
    run(fresh_device.tap(*icon.center))
    in_front(fresh_device, NOTES)


def test_long_press_holds_instead_of_tapping(fresh_device: AdbDevice) -> None:
    icon = find(run(fresh_device.ui_dump()), text="Notes")
    run(fresh_device.long_press(*icon.center, duration_ms=800))
    # A long press on an icon without a long-click action opens nothing (a tap would open Notes).
    assert run(fresh_device.foreground())[0] == LAUNCHER


def test_double_tap_presses_twice(fresh_device: AdbDevice) -> None:
    run(fresh_device.launch("Shop"))
    run(fresh_device.tap(*wait_for(fresh_device, rid="ad_close").center))
    run(fresh_device.tap(*wait_for(fresh_device, rid="product_row").center))
    add = wait_for(fresh_device, rid="add_to_cart")
    run(fresh_device.double_tap(*add.center))
    wait_for(fresh_device, text="Cart (2)")


def test_swipe_scrolls_a_list_and_the_bottom_edge_goes_home(fresh_device: AdbDevice) -> None:
    run(fresh_device.launch("Shop"))
    run(fresh_device.tap(*wait_for(fresh_device, rid="ad_close").center))
    before = texts(run(fresh_device.ui_dump()), "product_name")
    run(fresh_device.swipe(540, 1900, 540, 900, 300))
    after = texts(run(fresh_device.ui_dump()), "product_name")
    assert after[0] != before[0] and after[0] in before  # scrolled by a few rows
    run(fresh_device.swipe(540, 2395, 540, 1500, 200))
    in_front(fresh_device, LAUNCHER)


def test_keys_back_home_recents(fresh_device: AdbDevice) -> None:
    open_note_editor(fresh_device)
    run(fresh_device.key("back"))
    wait_for(fresh_device, rid="fab_new")  # back to the notes list
    run(fresh_device.key("home"))
    in_front(fresh_device, LAUNCHER)
    run(fresh_device.key("recents"))
    wait_for(fresh_device, text="Recent apps")
    run(fresh_device.key("KEYCODE_BACK"))
    wait_until(lambda: "Recent apps" not in {n.text for n in nodes(run(fresh_device.ui_dump()))}, timeout=10)


def test_type_text_with_adb_keyboard_unicode_clear_and_restore(fresh_device: AdbDevice) -> None:
    assert current_ime(fresh_device) == LATIN_IME
    open_note_editor(fresh_device)
    run(fresh_device.type_text("Groceries 清单 'n' $HOME"))
    assert note_title(fresh_device) == "Groceries 清单 'n' $HOME"
    assert current_ime(fresh_device) == ADB_KEYBOARD_IME
    run(fresh_device.type_text("Second"))  # clear=True replaces
    assert note_title(fresh_device) == "Second"
    run(fresh_device.type_text(" + more", clear=False))
    assert note_title(fresh_device) == "Second + more"
    run(fresh_device.key("delete"))
    assert note_title(fresh_device) == "Second + mor"
    run(fresh_device.clear_text())
    assert note_title(fresh_device) == EMPTY_TITLE
    run(fresh_device.restore_ime())
    assert current_ime(fresh_device) == LATIN_IME


def test_type_text_without_adb_keyboard_uses_input_text(fresh_phone: SimPhones, connect: Connect) -> None:
    plain = connect(fresh_phone, use_adb_keyboard=False)
    open_note_editor(plain)
    run(plain.type_text("hello world & 'quotes'"))
    assert note_title(plain) == "hello world & 'quotes'"
    assert current_ime(plain) == LATIN_IME  # the keyboard was left alone
    with pytest.raises(TextInputUnsupported) as info:
        run(plain.type_text("设置"))
    assert "ADB Keyboard" in str(info.value)
    assert note_title(plain) == "hello world & 'quotes'"  # nothing was sent
    run(plain.clear_text())
    assert note_title(plain) == EMPTY_TITLE


def test_unknown_key_name_is_refused_before_sending(device: AdbDevice) -> None:
    with pytest.raises(ValueError):
        run(device.key("warp-drive"))
