"""Key names to Android key codes, and text encodings for ``input text`` and ADB Keyboard."""

from __future__ import annotations

import base64
import re
import shlex

# Android KeyEvent.KEYCODE_* values; several spellings each, because callers (the agent's action
# grammar, the live-view data channel) name keys differently.
KEYCODES: dict[str, int] = {
    "home": 3,
    "back": 4,
    "call": 5,
    "endcall": 6,
    "dpad_up": 19,
    "up": 19,
    "dpad_down": 20,
    "down": 20,
    "dpad_left": 21,
    "left": 21,
    "dpad_right": 22,
    "right": 22,
    "dpad_center": 23,
    "volume_up": 24,
    "volume_down": 25,
    "power": 26,
    "camera": 27,
    "tab": 61,
    "space": 62,
    "enter": 66,
    "return": 66,
    "delete": 67,
    "del": 67,
    "backspace": 67,
    "menu": 82,
    "search": 84,
    "media_play_pause": 85,
    "page_up": 92,
    "page_down": 93,
    "escape": 111,
    "esc": 111,
    "forward_delete": 112,
    "move_home": 122,
    "move_end": 123,
    "volume_mute": 164,
    "recents": 187,
    "app_switch": 187,
    "overview": 187,
    "sleep": 223,
    "wakeup": 224,
}

_KEYCODE_PREFIX = re.compile(r"^keycode_", re.IGNORECASE)


def keycode(key: str | int) -> int:
    """The Android key code for a name (``back``, ``KEYCODE_BACK``, ``Back``) or a number; ValueError if unknown."""
    if isinstance(key, int):
        if key < 0:
            raise ValueError(f"negative key code {key}")
        return key
    name = _KEYCODE_PREFIX.sub("", key.strip()).lower().replace(" ", "_").replace("-", "_")
    if name.isdigit():
        return int(name)
    try:
        return KEYCODES[name]
    except KeyError:
        raise ValueError(f"unknown key {key!r}; known: {', '.join(sorted(KEYCODES))}") from None


def adb_keyboard_message(text: str) -> str:
    """The ``--es msg`` value for ADB Keyboard's ADB_INPUT_B64 broadcast (base64 is shell-safe)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def input_text_argument(text: str) -> str:
    """``text`` quoted for the phone's shell as ``input text`` expects: ASCII only, spaces as ``%s``.

    ``input text`` turns ``%s`` into a space, so a literal ``%s`` cannot be typed this way.
    """
    if not text.isascii():
        raise ValueError("input text types ASCII only")
    if any(ch < " " or ch == "\x7f" for ch in text):
        raise ValueError("input text cannot type control characters")
    return shlex.quote(text.replace(" ", "%s"))
