"""The built-in suite's Settings and launcher templates (one app: one step, several steps)."""

from __future__ import annotations

import random

from worker.eval import layout as at
from worker.eval.phone import EvalPhone
from worker.eval.template import Category, Params, Template, act

SETTINGS = "com.android.settings"
APPS = {"Contacts": "com.android.contacts", "Messages": "com.android.messaging", "Notes": "com.phonefleet.notes",
        "Shop": "com.phonefleet.shop", "Settings": SETTINGS, "Bank": "com.phonefleet.bank"}  # fmt: skip

# (key in settings global, its label, its switch)
SWITCHES = {"wifi_on": ("Wi-Fi", at.WIFI_SWITCH), "bluetooth_on": ("Bluetooth", at.BLUETOOTH_SWITCH),
            "airplane_mode_on": ("airplane mode", at.AIRPLANE_SWITCH)}  # fmt: skip


def _none(rng: random.Random) -> dict[str, str]:
    return {}


def _switches(wanted: dict[str, bool]) -> tuple:
    """setup, check and solve for a task that sets Settings' switches (each starts the other way)."""

    async def setup(phone: EvalPhone, params: Params) -> None:
        for key, on in wanted.items():
            await phone.put_setting("global", key, "0" if on else "1")
        if "airplane_mode_on" not in wanted:
            await phone.put_setting("global", "airplane_mode_on", "0")

    async def check(phone: EvalPhone, params: Params) -> float:
        states = [await phone.setting("global", key) == ("1" if on else "0") for key, on in wanted.items()]
        return sum(states) / len(states)  # partial credit: each switch right

    def solve(params: Params) -> list[str]:
        taps = [act.tap(SWITCHES[key][1]) for key in wanted]
        return [act.launch("Settings"), *taps, act.finish("Done.")]

    return setup, check, solve


def _switch_template(name: str, instruction: str, wanted: dict[str, bool], category: Category) -> Template:
    setup, check, solve = _switches(wanted)
    return Template(name, instruction, category, (SETTINGS,), _none, setup, check, solve)


def _theme(dark: bool) -> Template:
    async def setup(phone: EvalPhone, params: Params) -> None:
        await phone.put_setting("secure", "ui_night_mode", "1" if dark else "2")

    async def check(phone: EvalPhone, params: Params) -> float:
        return float(await phone.setting("secure", "ui_night_mode") == ("2" if dark else "1"))

    def solve(params: Params) -> list[str]:
        return [act.launch("Settings"), act.tap(at.DISPLAY_ROW), act.tap(at.DARK_THEME_SWITCH), act.finish("Done.")]

    word = "on" if dark else "off"
    return Template(f"dark_theme_{word}", f"Turn {word} the dark theme in Settings", Category.MULTI_STEP,
                    (SETTINGS,), _none, setup, check, solve)  # fmt: skip


def _language(tag: str, label: str) -> Template:
    other = "zh-CN" if tag == "en-US" else "en-US"

    async def setup(phone: EvalPhone, params: Params) -> None:
        await phone.put_setting("system", "system_locales", other)

    async def check(phone: EvalPhone, params: Params) -> float:
        return float(await phone.setting("system", "system_locales") == tag)

    async def cleanup(phone: EvalPhone, params: Params) -> None:
        await phone.put_setting("system", "system_locales", "en-US")

    def solve(params: Params) -> list[str]:
        return [act.launch("Settings"), act.tap(at.LANGUAGE_ROW), act.tap(at.LOCALE_ROWS[tag]), act.finish("Done.")]

    return Template(f"language_{tag.split('-')[0]}", f"Change the phone's language to {label}", Category.MULTI_STEP,
                    (SETTINGS,), _none, setup, check, solve, cleanup)  # fmt: skip


def _open_app() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"app": rng.choice(sorted(APPS))}

    async def check(phone: EvalPhone, params: Params) -> float:
        return float(await phone.foreground_package() == APPS[params["app"]])

    async def setup(phone: EvalPhone, params: Params) -> None:
        return None

    def solve(params: Params) -> list[str]:
        return [act.launch(params["app"]), act.finish(f"{params['app']} is open.")]

    return Template("open_app", "Open the {app} app", Category.ONE_STEP, (), generate, setup, check, solve)


TEMPLATES = [
    _switch_template("wifi_on", "Turn on Wi-Fi", {"wifi_on": True}, Category.ONE_STEP),
    _switch_template("wifi_off", "Turn off Wi-Fi", {"wifi_on": False}, Category.ONE_STEP),
    _switch_template("bluetooth_on", "Turn on Bluetooth", {"bluetooth_on": True}, Category.ONE_STEP),
    _switch_template("bluetooth_off", "Turn off Bluetooth", {"bluetooth_on": False}, Category.ONE_STEP),
    _switch_template("airplane_on", "Turn on airplane mode", {"airplane_mode_on": True}, Category.ONE_STEP),
    _switch_template("airplane_off", "Turn off airplane mode", {"airplane_mode_on": False}, Category.ONE_STEP),
    _switch_template("bluetooth_on_wifi_off", "Turn on Bluetooth and turn off Wi-Fi",
                     {"bluetooth_on": True, "wifi_on": False}, Category.MULTI_STEP),
    _switch_template("wifi_and_bluetooth_on", "Turn on both Wi-Fi and Bluetooth",
                     {"wifi_on": True, "bluetooth_on": True}, Category.MULTI_STEP),
    _switch_template("wifi_and_bluetooth_off", "Turn off both Wi-Fi and Bluetooth",
                     {"wifi_on": False, "bluetooth_on": False}, Category.MULTI_STEP),
    _theme(True),
    _theme(False),
    _language("zh-CN", "Chinese"),
    _language("en-US", "English"),
    _open_app(),
]


def _broken_wifi() -> Template:
    """Turn on Wi-Fi, with a deliberately broken check (it reads Bluetooth): its scripted solution does
    the task and it still scores 0, which shows the scores come from the check, not the agent."""
    setup, _check, solve = _switches({"wifi_on": True})

    async def check(phone: EvalPhone, params: Params) -> float:
        return float(await phone.setting("global", "bluetooth_on") == "1")

    return Template("wifi_on_broken_check", "Switch Wi-Fi on", Category.ONE_STEP, (SETTINGS,), _none, setup, check,
                    solve)  # fmt: skip


# The "selftest" suite: one sound template and one whose check is broken (tests/system/test_evals.py).
SELFTEST = [TEMPLATES[0], _broken_wifi()]
