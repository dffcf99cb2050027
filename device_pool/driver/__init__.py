"""The async ADB driver: an adb server client and ``AdbDevice``, the per-phone API the agent and pool use.

Each name loads its module on first use, so the phone process or a reader of one constant does not
load the whole driver.
"""

from device_pool.exports import lazy_exports

_EXPORTS = {
    "AdbServerClient": "device_pool.driver.adb_server",
    "default_adb_path": "device_pool.driver.adb_server",
    "AppCatalog": "device_pool.driver.apps",
    "KNOWN_APPS": "device_pool.driver.apps",
    "AdbDevice": "device_pool.driver.device",
    "DeviceTimeouts": "device_pool.driver.device",
    "SECRET_INPUT": "device_pool.driver.device",
    "TextInputUnsupported": "device_pool.driver.errors",
    "UnknownApp": "device_pool.driver.errors",
    "adb_errors": "device_pool.driver.errors",
    "KEYCODES": "device_pool.driver.keys",
    "keycode": "device_pool.driver.keys",
    "RawFrame": "device_pool.driver.screenshot",
    "black_fraction": "device_pool.driver.screenshot",
    "is_black_frame": "device_pool.driver.screenshot",
    "is_secure_frame": "device_pool.driver.screenshot",
    "SettleResult": "device_pool.driver.settle",
    "ShellOutput": "device_pool.driver.shell",
    "ADB_KEYBOARD_IME": "device_pool.driver.text_input",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
