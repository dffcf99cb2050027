"""The apps installed on the virtual phone, and how intents resolve to their activities."""

from __future__ import annotations

from device_pool.sim.apps.bank import BankApp
from device_pool.sim.apps.base import App, Ctx, Host, Screen
from device_pool.sim.apps.contacts import ContactsApp
from device_pool.sim.apps.launcher import Launcher
from device_pool.sim.apps.messaging import MessagingApp
from device_pool.sim.apps.notes import NotesApp
from device_pool.sim.apps.settings import SettingsApp
from device_pool.sim.apps.shop import ShopApp

# Launcher first; the rest in the order the home screen shows them.
APP_CLASSES: list[type[App]] = [Launcher, SettingsApp, ContactsApp, MessagingApp, NotesApp, ShopApp, BankApp]

# Installed packages without a UI of their own (`pm list packages` shows them).
SYSTEM_PACKAGES = [
    "android", "com.android.systemui", "com.android.shell", "com.android.providers.contacts",
    "com.android.providers.telephony", "com.android.providers.settings", "com.android.inputmethod.latin",
    "com.android.adbkeyboard",
]  # fmt: skip
IME_SERVICES = {
    "com.android.inputmethod.latin/.LatinIME": ("com.android.inputmethod.latin", "Android Keyboard (AOSP)"),
    "com.android.adbkeyboard/.AdbIME": ("com.android.adbkeyboard", "ADB Keyboard"),
}
EXTRA_LABELS = {
    "android": ("Android System", "Android 系统"),
    "com.android.systemui": ("System UI", "系统界面"),
    "com.android.shell": ("Shell", "Shell"),
    "com.android.providers.contacts": ("Contacts Storage", "联系人存储"),
    "com.android.providers.telephony": ("Phone and Messaging Storage", "电话和短信存储"),
    "com.android.providers.settings": ("Settings Storage", "设置存储"),
    "com.android.inputmethod.latin": ("Android Keyboard (AOSP)", "Android 键盘 (AOSP)"),
    "com.android.adbkeyboard": ("ADB Keyboard", "ADB Keyboard"),
}

__all__ = [
    "APP_CLASSES", "EXTRA_LABELS", "IME_SERVICES", "SYSTEM_PACKAGES", "App", "Ctx",
    "Host", "Screen",
]  # fmt: skip
