"""One scenario per app, driven only through AdbDevice from start to end, checked as a task checker would.

Each test drives the virtual phone as the agent does (launch, read the view tree, tap a node's centre,
type, press keys, screenshots) and then reads the phone's state the way a task checker does: shell
commands through the real `adb` client (`settings get`, `content query`, `cat`, `dumpsys`), never
through the UI and never in-process. Every test has a phone of its own, so none depends on another.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from device_pool.driver import AdbDevice, is_secure_frame
from tests.aio import run, until
from tests.processes import AdbServer
from tests.ui import tap_node, texts, wait_for_foreground, wait_for_node, wait_gone

LAUNCHER = "com.android.launcher3"
NOTES = "com.phonefleet.notes"
SHOP_ORDERS = "/data/data/com.phonefleet.shop/files/orders.json"


@dataclass(frozen=True)
class Checker:
    """The phone's state as a task checker reads it: `adb -s SERIAL shell COMMAND` with the real client."""

    adb: AdbServer
    serial: str

    def shell(self, command: str) -> str:
        done = self.adb.run("-s", self.serial, "shell", command)
        if done.returncode != 0:
            raise AssertionError(f"`{command}` exited with {done.returncode}: {done.stderr.decode()!r}")
        return done.stdout.decode("utf-8")

    def setting(self, key: str) -> str:
        return self.shell(f"settings get global {key}").strip()

    def rows(self, uri: str, *columns: str) -> list[tuple[str, ...]]:
        """`content query` rows, projected to ``columns`` (the last column may hold ", ")."""
        out = self.shell(f"content query --uri {uri} --projection {':'.join(columns)}")
        row = re.compile(r"^Row: \d+ " + ", ".join(f"{re.escape(c)}=(.*?)" for c in columns) + "$", re.M)
        return [m.groups() for m in row.finditer(out)]

    def focused_window(self) -> str:
        return next(line for line in self.shell("dumpsys window").splitlines() if "mCurrentFocus" in line)


@pytest.fixture
def checker(fresh_device: AdbDevice, adb_server: AdbServer) -> Checker:
    return Checker(adb_server, fresh_device.serial)


def test_settings_wifi_off_on_and_airplane_mode(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device

    async def scenario() -> None:
        assert checker.setting("wifi_on") == "1"
        await phone.launch("Settings")
        await tap_node(phone, rid="switch_wifi")
        await until(lambda: checker.setting("wifi_on") == "0", what="wifi_on 0")
        await tap_node(phone, rid="switch_wifi")
        await until(lambda: checker.setting("wifi_on") == "1", what="wifi_on 1")
        assert checker.setting("airplane_mode_on") == "0"
        await tap_node(phone, rid="switch_airplane")
        await until(lambda: checker.setting("airplane_mode_on") == "1", what="airplane_mode_on 1")
        # As on Android, airplane mode takes the radios down with it.
        assert checker.setting("wifi_on") == "0"

    run(scenario())


def test_contacts_add_a_contact(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device
    name, number = "Grace Hopper", "+1 415-555-0199"

    async def scenario() -> None:
        assert (name, number) not in checker.rows("content://contacts/phones", "display_name", "number")
        await phone.launch("Contacts")
        await tap_node(phone, rid="floating_action_button")
        await tap_node(phone, rid="editor_name")
        await phone.type_text(name)
        await tap_node(phone, rid="editor_phone")
        await phone.type_text(number)
        await tap_node(phone, rid="editor_menu_save_button")
        await wait_for_node(phone, rid="large_title", text=name)  # the new contact's page

    run(scenario())
    assert (name, number) in checker.rows("content://contacts/phones", "display_name", "number")


def test_messages_send_chinese_text_with_punctuation(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device
    address, body = "5550142", "明天见！会议改到 10:30, 地点: 3楼 (A室)。OK?"

    async def scenario() -> None:
        assert checker.rows("content://sms/sent", "address", "body") == []
        await phone.launch("Messages")
        await tap_node(phone, rid="start_new_conversation_button")
        await tap_node(phone, rid="recipient_text_view")
        await phone.type_text(address)
        await tap_node(phone, rid="compose_message_text")
        await phone.type_text(body)
        await tap_node(phone, rid="send_message_button")
        await wait_for_node(phone, rid="message_text", text=body)  # the sent bubble

    run(scenario())
    assert checker.rows("content://sms/sent", "address", "body") == [(address, body)]


def test_notes_create_then_edit(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device
    title, body, more = "Trip plan", "Pack bags\nCall taxi at 7", "\nBuy snacks"
    path = f"'/sdcard/Notes/{title}.txt'"

    async def scenario() -> None:
        await phone.launch("Notes")
        await tap_node(phone, rid="fab_new")
        await tap_node(phone, rid="note_title")
        await phone.type_text(title)
        await tap_node(phone, rid="note_body")
        await phone.type_text(body)
        await tap_node(phone, rid="save_button")
        await wait_for_node(phone, rid="note_title_text", text=title)  # back on the list
        assert checker.shell(f"cat {path}") == body

        await tap_node(phone, rid="note_title_text", text=title)
        await wait_for_node(phone, rid="delete_button")  # the editor of an existing note
        await tap_node(phone, rid="note_body")
        await phone.type_text(more, clear=False)
        await tap_node(phone, rid="save_button")
        await wait_for_node(phone, rid="note_title_text", text=title)

    run(scenario())
    assert checker.shell(f"cat {path}") == body + more
    assert checker.shell("ls /sdcard/Notes").splitlines().count(f"{title}.txt") == 1


def test_shop_close_advert_search_and_pay(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device
    product = "Smart Watch"

    async def scenario() -> tuple[str, str]:
        await phone.launch("Shop")
        # A fresh phone has never launched Shop: its first cold launch always shows the advert.
        await tap_node(phone, rid="ad_close")
        await wait_gone(phone, rid="ad_overlay")
        await tap_node(phone, rid="search_box")
        await phone.type_text(product.lower())
        await phone.key("enter")
        await wait_for_node(phone, rid="results_summary", text=f'1 results for "{product.lower()}"')
        await tap_node(phone, rid="product_name", text=product)
        await wait_for_node(phone, rid="product_title", text=product)
        price = texts(await phone.ui_dump(), "product_detail_price")[0]
        await tap_node(phone, rid="add_to_cart")
        await tap_node(phone, rid="cart_button", text="Cart (1)")
        await wait_for_node(phone, rid="cart_item")
        await tap_node(phone, rid="checkout_button")
        await tap_node(phone, rid="pay_button", text=f"Pay {price}")
        await wait_for_node(phone, rid="success_title", text="Payment successful")
        order_id = texts(await phone.ui_dump(), "order_id")[0].removeprefix("Order ")
        return price, order_id

    price, order_id = run(scenario())
    orders = json.loads(checker.shell(f"cat {SHOP_ORDERS}"))
    assert [(o["id"], o["status"]) for o in orders] == [(order_id, "paid")]
    [item] = orders[0]["items"]
    assert (item["name"], item["qty"], f"${item['price']:,.2f}") == (product, 1, price)
    assert orders[0]["total"] == item["price"]


def test_bank_secure_login_then_account(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device

    async def scenario() -> str:
        await phone.launch("Bank")
        await wait_for_node(phone, rid="username")  # the login screen, not the starting window
        assert is_secure_frame(await phone.screenshot())
        await tap_node(phone, rid="username")
        await phone.type_text("demo")
        await tap_node(phone, rid="password")
        await phone.type_text("1234")
        await tap_node(phone, rid="login_button")
        balance = await wait_for_node(phone, rid="balance")
        settled = await phone.wait_for_settle(strict=True)
        assert not is_secure_frame(settled.image)
        assert not is_secure_frame(await phone.screenshot("png"))
        return balance.text

    balance = run(scenario())
    assert re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d\d", balance), balance
    assert "com.phonefleet.bank/com.phonefleet.bank.AccountActivity" in checker.focused_window()


def test_launcher_home_and_recents(fresh_device: AdbDevice, checker: Checker) -> None:
    phone = fresh_device

    async def scenario() -> None:
        await tap_node(phone, text="Notes")  # the icon on the home screen
        await wait_for_node(phone, rid="fab_new")
        assert (await phone.foreground())[0] == NOTES
        await phone.key("home")
        await wait_for_foreground(phone, LAUNCHER)
        assert f"{LAUNCHER}/" in checker.focused_window()
        await phone.key("recents")
        await wait_for_node(phone, text="Recent apps")
        assert (await phone.foreground())[0] == LAUNCHER  # the overview belongs to the launcher
        await tap_node(phone, rid="title", text="Notes")  # the Notes card brings it back
        await wait_for_foreground(phone, NOTES)
        await wait_gone(phone, text="Recent apps")

    run(scenario())
    assert f"{NOTES}/" in checker.focused_window()
