"""Key names and text encodings (pure functions: no phone needed)."""

from __future__ import annotations

import base64

import pytest

from device_pool.driver import keycode
from device_pool.driver.keys import adb_keyboard_message, input_text_argument


@pytest.mark.parametrize(
    ("name", "code"),
    [("back", 4), ("BACK", 4), ("KEYCODE_BACK", 4), ("home", 3), ("recents", 187), ("app switch", 187),
     ("enter", 66), ("delete", 67), ("backspace", 67), ("66", 66), (24, 24)],
)  # fmt: skip
def test_key_names_map_to_android_codes(name: str | int, code: int) -> None:
    assert keycode(name) == code


def test_unknown_key_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        keycode("hyperspace")


def test_adb_keyboard_message_is_utf8_base64() -> None:
    message = adb_keyboard_message("打开设置 ok")
    assert base64.b64decode(message).decode() == "打开设置 ok"
    assert message.replace("+", "").replace("/", "").replace("=", "").isalnum()


def test_input_text_argument_quotes_for_the_shell_and_encodes_spaces() -> None:
    assert input_text_argument("hello world") == "hello%sworld"
    assert input_text_argument("it's $HOME; ls") == "'it'\"'\"'s%s$HOME;%sls'"
    with pytest.raises(ValueError):
        input_text_argument("设置")
