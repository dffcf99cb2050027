"""Where the virtual phone's controls are, on the model's 0–999 grid, for the scripted solutions.

Read from the virtual phone's own view tree at its default size (1080×2400, density 420: what the
sim provider makes); ``tests/worker/eval/test_builtin.py`` checks every point against the tree, so a
layout change fails there, not in a run. Rows of a list are its first row (the templates seed one).
"""

from __future__ import annotations

Point = tuple[int, int]

# Settings
WIFI_SWITCH: Point = (884, 145)
BLUETOOTH_SWITCH: Point = (884, 232)
AIRPLANE_SWITCH: Point = (884, 320)
WIFI_ROW: Point = (500, 145)
DISPLAY_ROW: Point = (500, 407)
LANGUAGE_ROW: Point = (500, 495)
ABOUT_ROW: Point = (500, 582)
DARK_THEME_SWITCH: Point = (845, 153)
LOCALE_ROWS: dict[str, Point] = {"en-US": (500, 140), "zh-CN": (500, 219)}
# Contacts
CREATE_CONTACT: Point = (745, 930)
CONTACT_NAME: Point = (500, 153)
CONTACT_PHONE: Point = (500, 241)
CONTACT_SAVE: Point = (840, 66)
FIRST_CONTACT: Point = (500, 140)
CONTACT_DELETE: Point = (731, 444)
CONTACT_MESSAGE: Point = (269, 444)
# Messages
START_CHAT: Point = (745, 930)
RECIPIENT: Point = (563, 131)
FIRST_SUGGESTION: Point = (500, 210)
COMPOSE: Point = (378, 952)
SEND: Point = (863, 952)
FIRST_CONVERSATION: Point = (500, 145)
# Notes
NEW_NOTE: Point = (745, 930)
NOTE_TITLE: Point = (500, 145)
NOTE_BODY: Point = (500, 585)
NOTE_SAVE: Point = (840, 66)
FIRST_NOTE: Point = (500, 145)
NOTE_DELETE: Point = (500, 941)
# Shop
AD_CLOSE: Point = (844, 316)
SEARCH_BOX: Point = (427, 133)
SEARCH_BUTTON: Point = (898, 133)
FIRST_RESULT: Point = (500, 271)
ADD_TO_CART: Point = (500, 582)
CART: Point = (837, 66)
CHECKOUT: Point = (500, 936)
PAY: Point = (500, 394)
# Bank
USERNAME: Point = (500, 309)
PASSWORD: Point = (500, 392)
LOGIN: Point = (500, 481)
