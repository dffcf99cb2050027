"""The rules on real virtual-phone screenshots, over real HTTP: each decision, then whole tasks.

Screenshots are half-size JPEG data URLs, as the agent sends them; every tap is mapped back to the
phone's pixels and checked against the bounds the phone's view tree reports for the view it meant to tap.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from device_pool.driver.apps import AppCatalog
from device_pool.sim import keycodes
from device_pool.sim.phone import PhoneConfig, VirtualPhone
from tests.conditions import wait_until
from tests.worker.reference_model.conftest import agent_messages, make_phone, tap_node
from worker.agent import actions as a
from worker.agent.parser import ParsedReply, format_reply, parse_reply

LAUNCHER = "com.android.launcher3"
WIFI_TASK = "Open Settings and turn on Wi-Fi"
SHOP_PAY_TASK = "Open Shop, search for 'earbuds', add Wireless Earbuds to the cart and pay"
LAUNCHED = [format_reply("Open the app.", a.Launch(app="Settings"))]


def ask(
    client: httpx.Client, task: str, phone: VirtualPhone, app: str, earlier: list[str] | None = None
) -> ParsedReply:
    r = client.post(
        "/chat/completions",
        json={"model": "autoglm-phone-9b", "messages": agent_messages(task, phone, app, earlier)},
    )
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["message"]["content"]
    assert content.startswith("<think>") and "do(action=" not in content[: content.index("<answer>")]
    return parse_reply(content)


def pixel(phone: VirtualPhone, element: tuple[int, int]) -> tuple[float, float]:
    return element[0] / 1000 * phone.config.width, element[1] / 1000 * phone.config.height


def assert_tap_inside(phone: VirtualPhone, action: a.Action, rid: str) -> None:
    assert isinstance(action, a.Tap), action
    node = phone.find(rid=rid)
    assert node is not None, rid
    x, y = pixel(phone, action.element)
    left, top, right, bottom = node.bounds
    assert left <= x < right and top <= y < bottom, f"{(x, y)} is outside {rid} {node.bounds}"


def test_launcher_and_open_settings_launches_settings(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    assert ask(client, WIFI_TASK, phone, LAUNCHER).action == a.Launch(app="Settings")


def test_wifi_off_taps_its_switch_then_finishes_when_on(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.settings_put("global", "wifi_on", "0")
    tap_node(phone, "Settings")
    reply = ask(client, WIFI_TASK, phone, "Settings", LAUNCHED)
    assert_tap_inside(phone, reply.action, "com.android.settings:id/switch_wifi")
    phone.tap(*pixel(phone, reply.action.element))  # type: ignore[union-attr]
    assert phone.settings_get("global", "wifi_on") == "1"
    done = ask(client, WIFI_TASK, phone, "Settings", [*LAUNCHED, format_reply("Tap.", reply.action)])
    assert isinstance(done.action, a.Finish) and done.action.message == "Turned Wi-Fi on."


def test_chinese_task_on_chinese_ui_turns_bluetooth_off(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    phone.settings_put("system", "system_locales", "zh-CN")
    phone.settings_put("global", "bluetooth_on", "1")
    tap_node(phone, "设置")
    reply = ask(
        client, "打开设置并关闭蓝牙", phone, "Settings", [format_reply("打开设置", a.Launch(app="设置"))]
    )
    assert_tap_inside(phone, reply.action, "com.android.settings:id/switch_bluetooth")


def test_advert_is_closed_with_its_close_button(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    tap_node(phone, "Shop")
    assert phone.find(rid="com.phonefleet.shop:id/ad_dialog") is not None
    reply = ask(client, SHOP_PAY_TASK, phone, "Shop", [format_reply("Open.", a.Launch(app="Shop"))])
    assert_tap_inside(phone, reply.action, "com.phonefleet.shop:id/ad_close")


def test_black_secure_screen_asks_the_user_to_log_in(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    tap_node(phone, "Bank")
    assert phone.frame().secure
    reply = ask(client, "Open Bank and log in", phone, "Bank", [format_reply("Open.", a.Launch(app="Bank"))])
    assert isinstance(reply.action, a.TakeOver) and "log in" in reply.action.message.lower()
    # Another task on the same black screen: leave the Bank for the task's own app.
    other = ask(client, "打开设置，打开WLAN", phone, "Bank")
    assert other.action == a.Launch(app="设置")


def test_pay_button_is_a_sensitive_tap(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    tap_node(phone, "Shop")
    tap_node(phone, rid="com.phonefleet.shop:id/ad_close")
    tap_node(phone, "Wireless Earbuds")
    tap_node(phone, rid="com.phonefleet.shop:id/add_to_cart")
    tap_node(phone, rid="com.phonefleet.shop:id/cart_button")
    tap_node(phone, rid="com.phonefleet.shop:id/checkout_button")
    pay = phone.find(rid="com.phonefleet.shop:id/pay_button")
    assert pay is not None
    reply = ask(client, SHOP_PAY_TASK, phone, "Shop", [format_reply("Open.", a.Launch(app="Shop"))])
    assert_tap_inside(phone, reply.action, "com.phonefleet.shop:id/pay_button")
    assert reply.action.message == pay.text  # type: ignore[union-attr]  # "Pay $88.69"


def test_unplanned_task_hands_over_then_finishes(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    task = "Order a large pizza for tonight"
    first = ask(client, task, phone, LAUNCHER)
    assert isinstance(first.action, a.TakeOver) and "cannot" in first.action.message
    second = ask(client, task, phone, LAUNCHER, [format_reply(first.thinking, first.action)])
    assert isinstance(second.action, a.Finish)


OPEN_AUTOGLM_NAMES = {"com.android.settings": "AndroidSystemSettings", "com.android.contacts": "Contacts"}


class OpenAutoGLMClient:
    """What Open-AutoGLM's client reports and does: its own name for a few packages ("System Home" for
    the rest), and a Launch of a name outside its table dropped without a word."""

    catalog = AppCatalog()

    def name(self, package: str) -> str:
        return OPEN_AUTOGLM_NAMES.get(package, "System Home")

    def launch(self, phone: VirtualPhone, app: str) -> None:
        package = self.catalog.resolve(app)
        if package in OPEN_AUTOGLM_NAMES:
            phone.start_activity(package=package)


class OurClient:
    catalog = AppCatalog()

    def name(self, package: str) -> str:
        return self.catalog.label(package)

    def launch(self, phone: VirtualPhone, app: str) -> None:
        phone.start_activity(package=self.catalog.resolve(app))


def run_task(
    client: httpx.Client, phone: VirtualPhone, task: str, max_steps: int = 20, agent: OurClient | None = None
) -> list[a.Action]:
    """Drive the phone in-process with the server's replies, as the agent loop would, until finish."""
    agent_client = agent or OurClient()
    replies: list[str] = []
    actions: list[a.Action] = []
    for _ in range(max_steps):
        package, _activity = phone.foreground()
        seen = phone.frame().seq  # the frame the request carries
        reply = ask(client, task, phone, agent_client.name(package), replies)
        replies.append(format_reply(reply.thinking, reply.action))
        action = reply.action
        actions.append(action)
        if isinstance(action, a.Finish):
            return actions
        if isinstance(action, a.Tap):  # a sensitive tap is confirmed here, as a person would
            phone.tap(*pixel(phone, action.element))
        elif isinstance(action, a.TypeText):
            phone.clear_text()
            phone.type_text(action.text)
        elif isinstance(action, a.Launch):
            agent_client.launch(phone, action.app)
        elif isinstance(action, a.Back):
            phone.key(keycodes.BACK)
        elif isinstance(action, a.Home):
            phone.key(keycodes.HOME)
        elif isinstance(action, a.Wait):
            wait_until(lambda seen=seen: phone.frame().seq != seen, timeout=5, what="the screen changes")
        else:
            pytest.fail(f"unexpected action {action!r}")
    pytest.fail(f"no finish in {max_steps} steps: {actions}")


def test_whole_task_add_contact(client: httpx.Client, tmp_path: Path) -> None:
    phone = VirtualPhone(tmp_path / "phone", PhoneConfig())  # with the 250 ms starting window
    actions = run_task(
        client, phone, "Open Contacts and add a contact named Ada Lovelace with phone number 5550100"
    )
    assert {"display_name": "Ada Lovelace", "number": "5550100"}.items() <= next(
        c for c in phone.contacts() if c["display_name"] == "Ada Lovelace"
    ).items()
    assert [x for x in actions if isinstance(x, a.TypeText)] == [
        a.TypeText(text="Ada Lovelace"),
        a.TypeText(text="5550100"),
    ]


def test_whole_task_shop_search_add_and_pay(client: httpx.Client, tmp_path: Path) -> None:
    phone = VirtualPhone(tmp_path / "phone", PhoneConfig())
    actions = run_task(client, phone, SHOP_PAY_TASK)
    sensitive = [x for x in actions if a.is_sensitive(x)]
    assert len(sensitive) == 1 and sensitive[0].message.startswith("Pay $")  # type: ignore[union-attr]
    assert phone.find(text="Payment successful") is not None
    assert isinstance(actions[-1], a.Finish) and "Paid for Wireless Earbuds" in actions[-1].message


def test_whole_task_note_without_quotes(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    actions = run_task(client, phone, "Write a note titled Shopping with the text buy milk")
    assert ("Shopping", "buy milk") in phone.state.notes()
    assert len(actions) >= 3 and actions[-1] == a.Finish(message='Saved the note "Shopping": "buy milk".')


def test_whole_task_two_switches(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    actions = run_task(client, phone, "Turn on Bluetooth and turn off Wi-Fi")
    assert (
        phone.settings_get("global", "bluetooth_on") == "1" and phone.settings_get("global", "wifi_on") == "0"
    )
    assert isinstance(actions[-1], a.Finish) and "Bluetooth is on" in actions[-1].message


def test_whole_task_first_search_result(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    run_task(client, phone, "Search the shop for coffee mug and add the first one to the cart")
    cart = phone.state.app_data("com.phonefleet.shop")["cart"]
    assert cart == {"p12": 1}  # Coffee Mug


@pytest.mark.parametrize(
    ("task", "done"),
    [
        (
            "Open Settings and turn on airplane mode",
            lambda p: p.settings_get("global", "airplane_mode_on") == "1",
        ),
        (
            "Add Wireless Earbuds to the cart",
            lambda p: p.state.app_data("com.phonefleet.shop")["cart"] == {"p01": 1},
        ),
    ],
)
def test_open_autoglm_client_names_and_dropped_launches(
    client: httpx.Client, tmp_path: Path, task: str, done
) -> None:
    """Settings reported as "AndroidSystemSettings", the Shop as "System Home" and its Launch dropped:
    the model reads the app from the screen and taps the Shop's icon on the launcher."""
    phone = make_phone(tmp_path)
    actions = run_task(client, phone, task, agent=OpenAutoGLMClient())
    assert done(phone), actions
    assert sum(isinstance(x, a.Launch) for x in actions) <= 2, actions


def test_a_tap_that_changes_nothing_is_tried_another_way_then_a_person_is_asked(
    client: httpx.Client, tmp_path: Path
) -> None:
    """The phone ignores every action here (nothing is done with the replies): the model notices the
    screen did not change, tries another way once, then asks a person, saying what it tried."""
    phone = make_phone(tmp_path)
    tap_node(phone, "Settings")
    task = "Open Settings and turn on airplane mode"
    replies = [format_reply("Open.", a.Launch(app="Settings"))]
    first = ask(client, task, phone, "Settings", replies)
    assert isinstance(first.action, a.Tap)
    replies.append(format_reply(first.thinking, first.action))
    second = ask(client, task, phone, "Settings", replies)
    assert isinstance(second.action, a.Tap) and second.action != first.action
    replies.append(format_reply(second.thinking, second.action))
    third = ask(client, task, phone, "Settings", replies)
    assert isinstance(third.action, a.TakeOver), third
    assert third.action.message.startswith("I'm stuck on") and "nothing changed" in third.action.message


def test_whole_task_message_to_a_contact_by_first_name(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    people = phone.contacts()
    firsts = [c["display_name"].split()[0] for c in people]
    person = next(c for c, f in zip(people, firsts, strict=True) if firsts.count(f) == 1)
    first = person["display_name"].split()[0]
    actions = run_task(client, phone, f"Send a message to {first} saying hello", max_steps=15)
    assert [(m["address"], m["body"]) for m in phone.sms("sent")] == [(person["number"], "hello")]
    assert a.TypeText(text=first) in actions, "the name is typed, then the suggested contact tapped"


def test_a_name_no_contact_has_is_asked_about(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    tap_node(phone, "Messages")
    tap_node(phone, "Start chat")
    phone.type_text("Zebedee")
    earlier = [
        format_reply("Open Messages.", a.Launch(app="Messages")),
        format_reply("Start a chat.", a.Tap(element=(800, 900))),
        format_reply("Type the name.", a.TypeText(text="Zebedee")),
    ]
    reply = ask(client, "Send a message to Zebedee saying hello", phone, "Messages", earlier)
    assert isinstance(reply.action, a.TakeOver) and "Zebedee" in reply.action.message
    assert phone.sms("sent") == []


def test_whole_task_product_by_its_chinese_name_on_an_english_phone(
    client: httpx.Client, tmp_path: Path
) -> None:
    phone = make_phone(tmp_path)
    run_task(client, phone, "把瑜伽垫加入购物车", max_steps=15)
    assert _cart(phone) == {"p16": 1}  # Yoga Mat


def test_whole_task_product_by_its_chinese_name_on_a_chinese_phone(
    client: httpx.Client, tmp_path: Path
) -> None:
    phone = make_phone(tmp_path)
    phone.settings_put("system", "system_locales", "zh-CN")
    run_task(client, phone, "打开商城，搜索咖啡杯并加入购物车", max_steps=15)
    assert _cart(phone) == {"p12": 1}  # Coffee Mug


def test_opening_an_app_whose_first_screen_is_secure_finishes(client: httpx.Client, tmp_path: Path) -> None:
    phone = make_phone(tmp_path)
    actions = run_task(client, phone, "launch the bank app", max_steps=6)
    assert phone.foreground()[0] == "com.phonefleet.bank"
    assert isinstance(actions[-1], a.Finish) and not any(isinstance(x, a.TakeOver) for x in actions)


def _cart(phone: VirtualPhone) -> dict[str, int]:
    return (phone.state.app_data("com.phonefleet.shop") or {}).get("cart", {})


# A sample of bench/bench_phrasings.py (the bench runs all of them through `phonefleet run`), checked
# from the phone's state, never from the model's message.
SAMPLE = [
    ("打开蓝牙", lambda p: p.settings_get("global", "bluetooth_on") == "1"),
    ("关闭WLAN，打开蓝牙", lambda p: (p.settings_get("global", "wifi_on"), p.settings_get("global", "bluetooth_on")) == ("0", "1")),
    ("Save 5550103 as Linus Torvalds", lambda p: any(c["display_name"] == "Linus Torvalds" and c["number"] == "5550103" for c in p.contacts())),
    ("Send a message to 5550123 saying hello", lambda p: any(m["address"] == "5550123" and m["body"] == "hello" for m in p.sms("sent"))),
    ("写一条笔记：明天开会", lambda p: ("明天开会", "明天开会") in p.state.notes()),
    ("Put a Yoga Mat in my cart", lambda p: _cart(p) == {"p16": 1}),
    ("Launch the Notes app", lambda p: p.foreground()[0] == "com.phonefleet.notes"),
]  # fmt: skip


@pytest.mark.parametrize(("task", "done"), SAMPLE, ids=[t for t, _ in SAMPLE])
def test_ordinary_phrasings_sample(client: httpx.Client, tmp_path: Path, task: str, done) -> None:
    phone = make_phone(tmp_path)
    actions = run_task(client, phone, task, max_steps=15)
    assert done(phone), actions
