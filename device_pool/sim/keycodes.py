"""Android's KEYCODE_* table (android.view.KeyEvent), by name and by number.

`input keyevent` accepts "KEYCODE_BACK", "BACK" or "4"; :func:`keycode_from_string` parses all three
as ``KeyEvent.keyCodeFromString`` does, and :func:`keycode_to_string` answers as ``keyCodeToString``.
"""

from __future__ import annotations

_NAMED: dict[str, int] = {
    "UNKNOWN": 0, "SOFT_LEFT": 1, "SOFT_RIGHT": 2, "HOME": 3, "BACK": 4, "CALL": 5, "ENDCALL": 6,
    "STAR": 17, "POUND": 18, "DPAD_UP": 19, "DPAD_DOWN": 20, "DPAD_LEFT": 21, "DPAD_RIGHT": 22,
    "DPAD_CENTER": 23, "VOLUME_UP": 24, "VOLUME_DOWN": 25, "POWER": 26, "CAMERA": 27, "CLEAR": 28,
    "COMMA": 55, "PERIOD": 56, "ALT_LEFT": 57, "ALT_RIGHT": 58, "SHIFT_LEFT": 59, "SHIFT_RIGHT": 60,
    "TAB": 61, "SPACE": 62, "SYM": 63, "EXPLORER": 64, "ENVELOPE": 65, "ENTER": 66, "DEL": 67,
    "GRAVE": 68, "MINUS": 69, "EQUALS": 70, "LEFT_BRACKET": 71, "RIGHT_BRACKET": 72, "BACKSLASH": 73,
    "SEMICOLON": 74, "APOSTROPHE": 75, "SLASH": 76, "AT": 77, "NUM": 78, "HEADSETHOOK": 79,
    "FOCUS": 80, "PLUS": 81, "MENU": 82, "NOTIFICATION": 83, "SEARCH": 84, "MEDIA_PLAY_PAUSE": 85,
    "MEDIA_STOP": 86, "MEDIA_NEXT": 87, "MEDIA_PREVIOUS": 88, "MEDIA_REWIND": 89,
    "MEDIA_FAST_FORWARD": 90, "MUTE": 91, "PAGE_UP": 92, "PAGE_DOWN": 93, "PICTSYMBOLS": 94,
    "SWITCH_CHARSET": 95, "BUTTON_A": 96, "BUTTON_B": 97, "BUTTON_C": 98, "BUTTON_X": 99,
    "BUTTON_Y": 100, "BUTTON_Z": 101, "BUTTON_L1": 102, "BUTTON_R1": 103, "BUTTON_L2": 104,
    "BUTTON_R2": 105, "BUTTON_THUMBL": 106, "BUTTON_THUMBR": 107, "BUTTON_START": 108,
    "BUTTON_SELECT": 109, "BUTTON_MODE": 110, "ESCAPE": 111, "FORWARD_DEL": 112, "CTRL_LEFT": 113,
    "CTRL_RIGHT": 114, "CAPS_LOCK": 115, "SCROLL_LOCK": 116, "META_LEFT": 117, "META_RIGHT": 118,
    "FUNCTION": 119, "SYSRQ": 120, "BREAK": 121, "MOVE_HOME": 122, "MOVE_END": 123, "INSERT": 124,
    "FORWARD": 125, "MEDIA_PLAY": 126, "MEDIA_PAUSE": 127, "MEDIA_CLOSE": 128, "MEDIA_EJECT": 129,
    "MEDIA_RECORD": 130, "NUM_LOCK": 143, "NUMPAD_DIVIDE": 154, "NUMPAD_MULTIPLY": 155,
    "NUMPAD_SUBTRACT": 156, "NUMPAD_ADD": 157, "NUMPAD_DOT": 158, "NUMPAD_COMMA": 159,
    "NUMPAD_ENTER": 160, "NUMPAD_EQUALS": 161, "NUMPAD_LEFT_PAREN": 162, "NUMPAD_RIGHT_PAREN": 163,
    "VOLUME_MUTE": 164, "INFO": 165, "CHANNEL_UP": 166, "CHANNEL_DOWN": 167, "ZOOM_IN": 168,
    "ZOOM_OUT": 169, "TV": 170, "WINDOW": 171, "GUIDE": 172, "DVR": 173, "BOOKMARK": 174,
    "CAPTIONS": 175, "SETTINGS": 176, "TV_POWER": 177, "TV_INPUT": 178, "STB_POWER": 179,
    "STB_INPUT": 180, "AVR_POWER": 181, "AVR_INPUT": 182, "PROG_RED": 183, "PROG_GREEN": 184,
    "PROG_YELLOW": 185, "PROG_BLUE": 186, "APP_SWITCH": 187, "LANGUAGE_SWITCH": 204,
    "MANNER_MODE": 205, "3D_MODE": 206, "CONTACTS": 207, "CALENDAR": 208, "MUSIC": 209,
    "CALCULATOR": 210, "ZENKAKU_HANKAKU": 211, "EISU": 212, "MUHENKAN": 213, "HENKAN": 214,
    "KATAKANA_HIRAGANA": 215, "YEN": 216, "RO": 217, "KANA": 218, "ASSIST": 219,
    "BRIGHTNESS_DOWN": 220, "BRIGHTNESS_UP": 221, "MEDIA_AUDIO_TRACK": 222, "SLEEP": 223,
    "WAKEUP": 224, "PAIRING": 225, "MEDIA_TOP_MENU": 226, "11": 227, "12": 228, "LAST_CHANNEL": 229,
    "TV_DATA_SERVICE": 230, "VOICE_ASSIST": 231, "TV_RADIO_SERVICE": 232, "TV_TELETEXT": 233,
    "TV_NUMBER_ENTRY": 234, "TV_TERRESTRIAL_ANALOG": 235, "TV_TERRESTRIAL_DIGITAL": 236,
    "TV_SATELLITE": 237, "TV_SATELLITE_BS": 238, "TV_SATELLITE_CS": 239, "TV_SATELLITE_SERVICE": 240,
    "TV_NETWORK": 241, "TV_ANTENNA_CABLE": 242, "TV_INPUT_HDMI_1": 243, "TV_INPUT_HDMI_2": 244,
    "TV_INPUT_HDMI_3": 245, "TV_INPUT_HDMI_4": 246, "TV_INPUT_COMPOSITE_1": 247,
    "TV_INPUT_COMPOSITE_2": 248, "TV_INPUT_COMPONENT_1": 249, "TV_INPUT_COMPONENT_2": 250,
    "TV_INPUT_VGA_1": 251, "TV_AUDIO_DESCRIPTION": 252, "TV_AUDIO_DESCRIPTION_MIX_UP": 253,
    "TV_AUDIO_DESCRIPTION_MIX_DOWN": 254, "TV_ZOOM_MODE": 255, "TV_CONTENTS_MENU": 256,
    "TV_MEDIA_CONTEXT_MENU": 257, "TV_TIMER_PROGRAMMING": 258, "HELP": 259, "NAVIGATE_PREVIOUS": 260,
    "NAVIGATE_NEXT": 261, "NAVIGATE_IN": 262, "NAVIGATE_OUT": 263, "STEM_PRIMARY": 264, "STEM_1": 265,
    "STEM_2": 266, "STEM_3": 267, "DPAD_UP_LEFT": 268, "DPAD_DOWN_LEFT": 269, "DPAD_UP_RIGHT": 270,
    "DPAD_DOWN_RIGHT": 271, "MEDIA_SKIP_FORWARD": 272, "MEDIA_SKIP_BACKWARD": 273,
    "MEDIA_STEP_FORWARD": 274, "MEDIA_STEP_BACKWARD": 275, "SOFT_SLEEP": 276, "CUT": 277, "COPY": 278,
    "PASTE": 279, "SYSTEM_NAVIGATION_UP": 280, "SYSTEM_NAVIGATION_DOWN": 281,
    "SYSTEM_NAVIGATION_LEFT": 282, "SYSTEM_NAVIGATION_RIGHT": 283, "ALL_APPS": 284, "REFRESH": 285,
    "THUMBS_UP": 286, "THUMBS_DOWN": 287, "PROFILE_SWITCH": 288,
}  # fmt: skip


def _build() -> dict[str, int]:
    table = dict(_NAMED)
    for digit in range(10):
        table[str(digit)] = 7 + digit
    for i, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        table[letter] = 29 + i
    for i in range(12):
        table[f"F{i + 1}"] = 131 + i
    for i in range(10):
        table[f"NUMPAD_{i}"] = 144 + i
    for i in range(16):
        table[f"BUTTON_{i + 1}"] = 188 + i
    return table


# Bare names ("BACK") to codes; digits "0".."9" are the KEYCODE_0.. keys, not numbers.
NAME_TO_CODE: dict[str, int] = _build()
CODE_TO_NAME: dict[int, str] = {code: name for name, code in NAME_TO_CODE.items()}
MAX_KEYCODE = max(CODE_TO_NAME)

HOME = NAME_TO_CODE["HOME"]
BACK = NAME_TO_CODE["BACK"]
DPAD_UP, DPAD_DOWN, DPAD_LEFT, DPAD_RIGHT, DPAD_CENTER = 19, 20, 21, 22, 23
VOLUME_UP, VOLUME_DOWN, POWER = 24, 25, 26
TAB, SPACE, ENTER, DEL, FORWARD_DEL = 61, 62, 66, 67, 112
MENU, SEARCH, APP_SWITCH, SLEEP, WAKEUP = 82, 84, 187, 223, 224


def keycode_from_string(value: str) -> int | None:
    """Parse "KEYCODE_BACK", "BACK" or "4" (as KeyEvent.keyCodeFromString); None when unknown.

    As on Android, a plain number is taken as a code (so "4" is BACK, not KEYCODE_4), and
    "KEYCODE_4" is the digit key.
    """
    text = value.strip()
    if text.upper().startswith("KEYCODE_"):
        code = NAME_TO_CODE.get(text[len("KEYCODE_") :].upper())
        if code is not None:
            return code
        text = text[len("KEYCODE_") :]
    if text.isdigit():
        return int(text)
    return NAME_TO_CODE.get(text.upper())


def keycode_to_string(code: int) -> str:
    """ "KEYCODE_BACK" for 4; the number itself for codes Android has no name for."""
    name = CODE_TO_NAME.get(code)
    return f"KEYCODE_{name}" if name is not None else str(code)


# Characters `input text` can map to one key press (used by shells that emulate key events).
CHAR_TO_CODE: dict[str, int] = {
    **{c: 29 + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")},
    **{str(d): 7 + d for d in range(10)},
    " ": SPACE, ",": 55, ".": 56, "\t": TAB, "\n": ENTER, "`": 68, "-": 69, "=": 70, "[": 71,
    "]": 72, "\\": 73, ";": 74, "'": 75, "/": 76, "@": 77, "+": 81, "*": 17, "#": 18,
}  # fmt: skip

__all__ = [
    "CHAR_TO_CODE",
    "CODE_TO_NAME",
    "MAX_KEYCODE",
    "NAME_TO_CODE",
    "keycode_from_string",
    "keycode_to_string",
]
