"""The async ADB driver: an adb server client and ``AdbDevice``, the per-phone API the agent and pool use."""

from device_pool.driver.adb_server import AdbServerClient, default_adb_path
from device_pool.driver.apps import KNOWN_APPS, AppCatalog
from device_pool.driver.device import AdbDevice, DeviceTimeouts
from device_pool.driver.errors import TextInputUnsupported, UnknownApp, adb_errors
from device_pool.driver.keys import KEYCODES, keycode
from device_pool.driver.screenshot import (
    RawFrame,
    black_fraction,
    is_black_frame,
    is_secure_frame,
    screenrecord_projection,
)
from device_pool.driver.settle import SettleResult
from device_pool.driver.shell import ShellOutput
from device_pool.driver.text_input import ADB_KEYBOARD_IME

__all__ = [
    "ADB_KEYBOARD_IME",
    "KEYCODES",
    "KNOWN_APPS",
    "AdbDevice",
    "AdbServerClient",
    "AppCatalog",
    "DeviceTimeouts",
    "RawFrame",
    "SettleResult",
    "ShellOutput",
    "TextInputUnsupported",
    "UnknownApp",
    "adb_errors",
    "black_fraction",
    "default_adb_path",
    "is_black_frame",
    "is_secure_frame",
    "keycode",
    "screenrecord_projection",
]
