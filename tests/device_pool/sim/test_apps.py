"""Each app driven through its UI to the end, checked the way a task checker would."""

from __future__ import annotations

import json
import random
from pathlib import Path
from xml.etree import ElementTree

from device_pool.sim import keycodes
from device_pool.sim.apps.shop import catalog
from device_pool.sim.phone import PhoneConfig, VirtualPhone


def make_phone(tmp_path: Path, name: str = "phone", **config: object) -> VirtualPhone:
    config.setdefault("launch_delay_ms", 0)
    return VirtualPhone(tmp_path / name, PhoneConfig(**config))  # type: ignore[arg-type]


def tap(phone: VirtualPhone, text: str | None = None, rid: str | None = None) -> None:
    """Tap the centre of the on-screen node with this text and/or resource-id."""
    node = phone.find(text=text, rid=rid)
    assert node is not None, f"{text or rid!r} is not on screen: {phone.ui_xml()}"
    phone.tap(*node.center)


def nodes(phone: VirtualPhone, rid: str) -> list[ElementTree.Element]:
    """Every on-screen node with this resource-id, as uiautomator dumps them."""
    return [n for n in ElementTree.fromstring(phone.ui_xml()).iter("node") if n.get("resource-id") == rid]


def launch_from_home(phone: VirtualPhone, label: str) -> None:
    phone.key(keycodes.HOME)
    tap(phone, label)


def test_settings_switches_and_settings_keys(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Settings")
    assert phone.settings_get("global", "wifi_on") == "1"
    tap(phone, rid="com.android.settings:id/switch_wifi")
    assert phone.settings_get("global", "wifi_on") == "0"
    tap(phone, rid="com.android.settings:id/switch_bluetooth")
    assert phone.settings_get("global", "bluetooth_on") == "1"
    # settings put from outside shows in the UI and the status bar.
    phone.settings_put("global", "wifi_on", "1")
    assert phone.find(rid="com.android.settings:id/switch_wifi").checked  # type: ignore[union-attr]
    assert phone.find(desc="Wifi signal full.") is not None
    # Airplane mode from the UI turns the radios off, and back.
    tap(phone, rid="com.android.settings:id/switch_airplane")
    assert phone.settings_get("global", "airplane_mode_on") == "1"
    assert phone.settings_get("global", "wifi_on") == "0"
    assert phone.find(desc="Airplane mode on.") is not None
    tap(phone, rid="com.android.settings:id/switch_airplane")
    assert phone.settings_get("global", "airplane_mode_on") == "0"
    assert phone.settings_get("global", "wifi_on") == "1"
    assert phone.settings_get("global", "bluetooth_on") == "1"


def test_settings_wifi_page(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Settings")
    tap(phone, "Wi-Fi")
    assert phone.find(text="Connected") is not None
    tap(phone, rid="com.android.settings:id/switch_wifi")
    assert phone.settings_get("global", "wifi_on") == "0"
    assert phone.find(text="Connected") is None


def test_chinese_locale(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.settings_put("system", "system_locales", "zh-CN")
    assert phone.app_label("com.android.settings") == "设置"
    tap(phone, "设置")
    assert phone.find(text="飞行模式") is not None


def test_contacts_add_and_sorted(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Contacts")
    names = [n.text for n in phone.find(rid="com.android.contacts:id/list").walk()  # type: ignore[union-attr]
             if n.rid == "com.android.contacts:id/cliv_name_textview"]  # fmt: skip
    assert names == sorted(names, key=str.casefold) and len(names) >= 6
    tap(phone, "Create contact")
    phone.type_text("Aaron Zhu")
    tap(phone, rid="com.android.contacts:id/editor_phone")
    phone.type_text("+1 650 555 0000")
    tap(phone, "Save")
    assert phone.find(text="Aaron Zhu", rid="com.android.contacts:id/large_title") is not None
    assert {"display_name": "Aaron Zhu", "number": "+1 650 555 0000"}.items() <= phone.contacts()[0].items()
    phone.key(keycodes.BACK)
    first = next(n for n in phone.find(rid="com.android.contacts:id/list").walk()  # type: ignore[union-attr]
                 if n.rid == "com.android.contacts:id/cliv_name_textview")  # fmt: skip
    assert first.text == "Aaron Zhu"


def test_messages_compose_and_send(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Messages")
    assert len(phone.sms("inbox")) == 3 and phone.sms("sent") == []
    tap(phone, "Start chat")
    phone.type_text("+1 555 0100")
    tap(phone, rid="com.android.messaging:id/compose_message_text")
    phone.type_text("Running late, see you at 6")
    tap(phone, "Send")
    sent = phone.sms("sent")
    assert len(sent) == 1
    assert sent[0]["address"] == "+1 555 0100" and sent[0]["body"] == "Running late, see you at 6"
    assert sent[0]["type"] == "2"
    assert phone.find(text="Running late, see you at 6") is not None, "the bubble shows"
    phone.key(keycodes.BACK)
    assert phone.find(text="You: Running late, see you at 6") is not None


def test_messages_from_intent_to_contact(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    contact = phone.contacts()[0]
    phone.start_activity(action="android.intent.action.SENDTO", data=f"smsto:{contact['number']}")
    assert phone.find(text=contact["display_name"]) is not None, "the bar names the contact"
    phone.type_text("hi")  # the body is focused
    phone.key(keycodes.ENTER)  # ENTER in the body is not Send
    tap(phone, "Send")
    assert phone.sms("sent")[0]["address"] == contact["number"]


def test_messages_suggests_contacts_for_a_typed_name(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    contact = phone.contacts()[0]
    first = contact["display_name"].split()[0]
    launch_from_home(phone, "Messages")
    tap(phone, "Start chat")
    phone.type_text(first.lower())  # a word's start, any case
    assert nodes(phone, "com.android.messaging:id/contact_suggestion")
    assert phone.find(text=contact["display_name"]) is not None
    tap(phone, contact["display_name"])
    assert phone.find(text="New conversation") is None, "the conversation is addressed"
    phone.type_text("hello")  # the body has focus
    tap(phone, "Send")
    assert phone.sms("sent")[0] == {**phone.sms("sent")[0], "address": contact["number"], "body": "hello"}


def test_messages_suggests_nothing_for_a_number_no_contact_has(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Messages")
    tap(phone, "Start chat")
    phone.type_text("5550123")
    assert nodes(phone, "com.android.messaging:id/contact_suggestion") == []


def test_notes_create_and_edit(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    notes = phone.host_path("/sdcard/Notes")
    assert (notes / "Shopping list.txt").is_file()
    launch_from_home(phone, "Notes")
    tap(phone, "New note")
    phone.type_text("Trip")
    tap(phone, rid="com.phonefleet.notes:id/note_body")
    phone.type_text("Pack passport")
    tap(phone, "Save")
    assert (notes / "Trip.txt").read_text() == "Pack passport"
    assert phone.find(text="Trip") is not None
    tap(phone, "Trip")
    tap(phone, rid="com.phonefleet.notes:id/note_title")
    for _ in range(4):
        phone.key(keycodes.DEL)
    phone.type_text("Holiday")
    tap(phone, rid="com.phonefleet.notes:id/note_body")
    phone.type_text(" and tickets")
    tap(phone, "Save")
    assert not (notes / "Trip.txt").exists()
    assert (notes / "Holiday.txt").read_text() == "Pack passport and tickets"


def test_shop_search_cart_and_pay(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, seed=3)
    launch_from_home(phone, "Shop")
    assert phone.find(rid="com.phonefleet.shop:id/ad_close") is not None, "the first launch shows the advert"
    assert phone.find(text="×") is not None
    tap(phone, rid="com.phonefleet.shop:id/search_box")  # covered by the advert: nothing happens
    assert phone.find(rid="com.phonefleet.shop:id/ad_close") is not None
    tap(phone, rid="com.phonefleet.shop:id/ad_close")
    assert phone.find(rid="com.phonefleet.shop:id/ad_close") is None
    tap(phone, rid="com.phonefleet.shop:id/search_box")
    phone.type_text("earbuds")
    phone.key(keycodes.ENTER)
    assert phone.find(text='1 results for "earbuds"') is not None
    tap(phone, "Wireless Earbuds")
    tap(phone, "Add to cart")
    assert phone.find(text="Cart (1)") is not None
    tap(phone, "Cart (1)")
    tap(phone, "Checkout")
    price = next(p["price"] for p in catalog(3) if p["name"] == "Wireless Earbuds")
    orders_file = phone.host_path("/data/data/com.phonefleet.shop/files/orders.json")
    assert not orders_file.exists(), "nothing is paid before Pay"
    tap(phone, rid="com.phonefleet.shop:id/pay_button")
    orders = json.loads(orders_file.read_text())
    assert len(orders) == 1 and orders[0]["status"] == "paid"
    assert orders[0]["items"] == [{"id": "p01", "name": "Wireless Earbuds", "qty": 1, "price": price}]
    assert phone.find(text="Payment successful") is not None
    assert phone.find(text="Cart (0)") is None  # the success page has no cart button
    phone.key(keycodes.BACK)
    assert phone.find(text="Cart (0)") is not None


def test_shop_names_products_in_the_phones_language_and_finds_either_name(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, seed=4)
    phone.settings_put("system", "system_locales", "zh-CN")
    launch_from_home(phone, "商城")
    if phone.find(rid="com.phonefleet.shop:id/ad_close") is not None:
        tap(phone, rid="com.phonefleet.shop:id/ad_close")
    assert phone.find(text="无线耳机") is not None, "recommended products in Chinese"
    for query, shown in (("耳机", {"无线耳机", "头戴式耳机"}), ("yoga mat", {"瑜伽垫"})):
        tap(phone, rid="com.phonefleet.shop:id/search_box")
        phone.clear_text()
        phone.type_text(query)
        phone.key(keycodes.ENTER)
        assert {n.get("text") for n in nodes(phone, "com.phonefleet.shop:id/product_name")} == shown, query
    phone.settings_put("system", "system_locales", "en-US")
    tap(phone, rid="com.phonefleet.shop:id/search_box")
    phone.clear_text()
    phone.type_text("瑜伽垫")  # a Chinese name on an English phone
    phone.key(keycodes.ENTER)
    assert [n.get("text") for n in nodes(phone, "com.phonefleet.shop:id/product_name")] == ["Yoga Mat"]


def test_shop_advert_follows_the_seed(tmp_path: Path) -> None:
    seed = 11
    phone = make_phone(tmp_path, seed=seed)
    shown = []
    for _ in range(6):
        phone.start_activity(package="com.phonefleet.shop")
        shown.append(phone.find(rid="com.phonefleet.shop:id/ad_close") is not None)
        phone.force_stop("com.phonefleet.shop")
    expected = [True] + [random.Random(seed * 7919 + n).random() < 0.5 for n in range(1, 6)]
    assert shown == expected
    phone.start_activity(package="com.phonefleet.shop")
    if phone.find(rid="com.phonefleet.shop:id/ad_close") is not None:
        phone.key(keycodes.BACK)  # BACK dismisses the pop-up, staying in the app
        assert phone.foreground()[0] == "com.phonefleet.shop"
        assert phone.find(rid="com.phonefleet.shop:id/ad_close") is None


def test_bank_login_is_secure_then_account_is_not(tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    launch_from_home(phone, "Bank")
    assert phone.frame().secure
    phone.type_text("demo")
    tap(phone, rid="com.phonefleet.bank:id/password")
    phone.type_text("0000")
    password = phone.find(rid="com.phonefleet.bank:id/password")
    assert password is not None and password.password and password.shown_text == "••••"
    tap(phone, "Log in")
    assert phone.find(rid="com.phonefleet.bank:id/error") is not None
    assert phone.frame().secure
    tap(phone, rid="com.phonefleet.bank:id/password")
    phone.type_text("1234")
    tap(phone, "Log in")
    frame = phone.frame()
    assert not frame.secure
    assert frame.rgba != b"\x00\x00\x00\xff" * (1080 * 2400)
    balance = phone.find(rid="com.phonefleet.bank:id/balance")
    assert balance is not None and balance.text.startswith("$")
    assert phone.foreground() == ("com.phonefleet.bank", "com.phonefleet.bank.AccountActivity")
    # Like a real banking app it stays signed in (its private data), until pm clear or Log out.
    phone.force_stop("com.phonefleet.bank")
    phone.start_activity(package="com.phonefleet.bank")
    assert not phone.frame().secure, "the login survives a force-stop"
    assert phone.find(rid="com.phonefleet.bank:id/balance") is not None
    tap(phone, "Log out")
    assert phone.frame().secure
    phone.force_stop("com.phonefleet.bank")
    phone.start_activity(package="com.phonefleet.bank")
    assert phone.frame().secure, "signed out for good"
    tap(phone, rid="com.phonefleet.bank:id/username")
    phone.type_text("demo")
    tap(phone, rid="com.phonefleet.bank:id/password")
    phone.type_text("1234")
    tap(phone, "Log in")
    assert not phone.frame().secure
    phone.clear_package("com.phonefleet.bank")
    phone.start_activity(package="com.phonefleet.bank")
    assert phone.frame().secure, "pm clear signs out"
