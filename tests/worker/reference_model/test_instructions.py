"""Task phrasings → goals (no OCR: these are plain regex rules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO
from worker.reference_model.instructions import Intent, parse_instruction


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
    ],
)  # fmt: skip
def test_phrasings(task: str, intent: Intent, app: str, slots: dict[str, str]) -> None:
    goal = parse_instruction(task)
    assert goal is not None
    assert (goal.intent, goal.app, goal.slots) == (intent, app, slots)


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
