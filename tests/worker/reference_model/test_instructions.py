"""Task phrasings → goals (no OCR: these are plain regex rules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO
from worker.reference_model.instructions import Intent, parse_instruction
from worker.reference_model.plan import front_package


@pytest.mark.parametrize(
    ("task", "intent", "app", "slots"),
    [
        ("Open Settings and turn on Wi-Fi", Intent.TOGGLE, "Settings", {"setting": "wifi", "state": "on"}),
        ("Open Contacts and add a contact named Ada Lovelace with phone number 5550100", Intent.ADD_CONTACT,
         "Contacts", {"name": "Ada Lovelace", "phone": "5550100"}),
        ("Open Messages and send the message 'See you at 7' to 5550123", Intent.SEND_MESSAGE, "Messages",
         {"to": "5550123", "body": "See you at 7"}),
        ("Open Notes and create a note titled 'Groceries' with the text 'milk, eggs'", Intent.CREATE_NOTE, "Notes",
         {"title": "Groceries", "body": "milk, eggs"}),
        ("Open Shop, search for 'earbuds' and add Wireless Earbuds to the cart", Intent.SHOP, "Shop",
         {"query": "earbuds", "product": "Wireless Earbuds", "pay": ""}),
        ("Open Shop, search for 'earbuds', add Wireless Earbuds to the cart and pay", Intent.SHOP, "Shop",
         {"query": "earbuds", "product": "Wireless Earbuds", "pay": "yes"}),
        ("Open Bank and log in", Intent.BANK_LOGIN, "Bank", {}),
        ("打开设置，打开WLAN", Intent.TOGGLE, "设置", {"setting": "wifi", "state": "on"}),
        ("打开设置并关闭蓝牙", Intent.TOGGLE, "设置", {"setting": "bluetooth", "state": "off"}),
        ("Turn Wi-Fi off", Intent.TOGGLE, "Settings", {"setting": "wifi", "state": "off"}),
        ("Send 'Wi-Fi is on' to 5550123", Intent.SEND_MESSAGE, "Messages", {"to": "5550123", "body": "Wi-Fi is on"}),
        ("打开笔记", Intent.OPEN_APP, "笔记", {}),
        # Ordinary phrasings: no quotes, contacts by name, "the first one", notes with a title and text.
        ("Write a note titled Shopping with the text buy milk", Intent.CREATE_NOTE, "Notes",
         {"title": "Shopping", "body": "buy milk"}),
        ("Write a note: buy milk", Intent.CREATE_NOTE, "Notes", {"title": "", "body": "buy milk"}),
        ("Create a note called Ideas that says try the new cafe", Intent.CREATE_NOTE, "Notes",
         {"title": "Ideas", "body": "try the new cafe"}),
        ("新建笔记，标题是购物，内容是买牛奶", Intent.CREATE_NOTE, "Notes", {"title": "购物", "body": "买牛奶"}),
        ("写一条笔记：明天开会", Intent.CREATE_NOTE, "Notes", {"title": "", "body": "明天开会"}),
        ("Send a message to Bob saying hello", Intent.SEND_MESSAGE, "Messages", {"to": "Bob", "body": "hello"}),
        ("Text 5550124: See you at 7", Intent.SEND_MESSAGE, "Messages", {"to": "5550124", "body": "See you at 7"}),
        ("Tell 5550128 that dinner is ready", Intent.SEND_MESSAGE, "Messages",
         {"to": "5550128", "body": "dinner is ready"}),
        ("发短信给5550130：明天见", Intent.SEND_MESSAGE, "Messages", {"to": "5550130", "body": "明天见"}),
        ("给5550129发短信说你好", Intent.SEND_MESSAGE, "Messages", {"to": "5550129", "body": "你好"}),
        ("Add Grace Hopper to my contacts with number 5550101", Intent.ADD_CONTACT, "Contacts",
         {"name": "Grace Hopper", "phone": "5550101"}),
        ("Save 5550103 as Linus Torvalds", Intent.ADD_CONTACT, "Contacts", {"name": "Linus Torvalds", "phone": "5550103"}),
        ("Create a new contact: Alan Turing, 555-0102", Intent.ADD_CONTACT, "Contacts",
         {"name": "Alan Turing", "phone": "5550102"}),
        ("新建一个联系人，名字叫李四，手机号13900139000", Intent.ADD_CONTACT, "Contacts",
         {"name": "李四", "phone": "13900139000"}),
        ("Search the shop for coffee mug and add the first one to the cart", Intent.SHOP, "Shop",
         {"query": "coffee mug", "product": "", "pay": "", "pick": "first"}),
        ("Put a Yoga Mat in my cart", Intent.SHOP, "Shop", {"query": "Yoga Mat", "product": "Yoga Mat", "pay": ""}),
        ("打开商城，搜索Backpack并加入购物车", Intent.SHOP, "商城", {"query": "Backpack", "product": "Backpack", "pay": ""}),
        ("Turn on Bluetooth and turn off Wi-Fi", Intent.TOGGLE, "Settings",
         {"setting": "bluetooth", "state": "on", "setting2": "wifi", "state2": "off"}),
        ("Turn on Wi-Fi and Bluetooth", Intent.TOGGLE, "Settings",
         {"setting": "wifi", "state": "on", "setting2": "bluetooth", "state2": "on"}),
        ("关闭WLAN，打开蓝牙", Intent.TOGGLE, "Settings",
         {"setting": "wifi", "state": "off", "setting2": "bluetooth", "state2": "on"}),
        ("把无线关掉", Intent.TOGGLE, "Settings", {"setting": "wifi", "state": "off"}),
        ("Please switch the Wi-Fi off", Intent.TOGGLE, "Settings", {"setting": "wifi", "state": "off"}),
        ("Open Settings and turn on airplane mode", Intent.TOGGLE, "Settings", {"setting": "airplane", "state": "on"}),
        ("Launch the Notes app", Intent.OPEN_APP, "Notes", {}),
        ("Go to Messages", Intent.OPEN_APP, "Messages", {}),
        # More ways to say the same (general rules: states, sentence ends, brackets, quoted text kept exactly).
        ("Kill the Bluetooth", Intent.TOGGLE, "Settings", {"setting": "bluetooth", "state": "off"}),
        ("Put the phone into flight mode", Intent.TOGGLE, "Settings", {"setting": "airplane", "state": "on"}),
        ("Get the phone out of airplane mode", Intent.TOGGLE, "Settings", {"setting": "airplane", "state": "off"}),
        ("Create a contact for Ann Lee? Her number is 5550111", Intent.ADD_CONTACT, "Contacts",
         {"name": "Ann Lee", "phone": "5550111"}),
        ("Add Priya to my contacts, phone (408) 555-0176", Intent.ADD_CONTACT, "Contacts",
         {"name": "Priya", "phone": "4085550176"}),
        ("把李雷的电话 13800000000 存到通讯录", Intent.ADD_CONTACT, "Contacts", {"name": "李雷", "phone": "13800000000"}),
        ("sms 5550140 that reads see you", Intent.SEND_MESSAGE, "Messages", {"to": "5550140", "body": "see you"}),
        ('Message 5550141 and say "Well done!"', Intent.SEND_MESSAGE, "Messages", {"to": "5550141", "body": "Well done!"}),
        ("Jot down 'Gate B' in my notes", Intent.CREATE_NOTE, "Notes", {"title": "", "body": "Gate B"}),
        ("记一下：买菜", Intent.CREATE_NOTE, "Notes", {"title": "", "body": "买菜"}),
        ("在笔记里写“周末爬山”", Intent.CREATE_NOTE, "Notes", {"title": "", "body": "周末爬山"}),
        ("I want to buy the Backpack, add it to my cart", Intent.SHOP, "Shop",
         {"query": "Backpack", "product": "Backpack", "pay": ""}),
        ("购物车里加一个 yoga mat", Intent.SHOP, "Shop", {"query": "yoga mat", "product": "yoga mat", "pay": ""}),
        ("把无线耳机加入购物车", Intent.SHOP, "Shop", {"query": "无线耳机", "product": "无线耳机", "pay": ""}),
        ("Bring up my messages?", Intent.OPEN_APP, "messages", {}),
    ],
)  # fmt: skip
def test_phrasings(task: str, intent: Intent, app: str, slots: dict[str, str]) -> None:
    goal = parse_instruction(task)
    assert goal is not None
    assert (goal.intent, goal.app, goal.slots) == (intent, app, slots)


def test_later_words_are_content_not_intent() -> None:
    """A note whose text reads like a message is still a note: the rule that matches first wins."""
    goal = parse_instruction("Write a note: text Bob that I'm late")
    assert (
        goal is not None
        and goal.intent is Intent.CREATE_NOTE
        and goal.slot("body") == "text Bob that I'm late"
    )


@pytest.mark.parametrize("task", ["", "Order a pizza", "Open Settings and turn on dark theme", "Open Foo"])
def test_unknown_tasks_have_no_goal(task: str) -> None:
    assert parse_instruction(task) is None


def test_cli_refuses_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text('{"not": "a list"}')
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "reference-model", "--port", "1", "--script", str(script)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "must be a JSON list of strings" in result.stderr


@pytest.mark.parametrize(
    ("label", "package"),
    [
        ("Settings", "com.android.settings"),
        ("AndroidSystemSettings", "com.android.settings"),  # Open-AutoGLM's name for com.android.settings
        ("com.phonefleet.shop", "com.phonefleet.shop"),
        ("笔记", "com.phonefleet.notes"),
        ("System Home", None),  # Open-AutoGLM's name for any package it does not know: says nothing
        ("", None),
        (None, None),
    ],
)
def test_the_clients_name_for_the_app_in_front_is_read_generously(
    label: str | None, package: str | None
) -> None:
    assert front_package(label) == package
