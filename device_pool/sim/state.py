"""A phone's persistent data, laid out under its file system root as Android keeps /data.

Everything lives under ``data_dir/fs`` so shell commands (`cat`, `ls`) see what the apps did:

    /data/system/users/0/settings_{system,secure,global}.json   settings (IMEs are secure settings)
    /data/data/com.android.providers.contacts/databases/contacts.json
    /data/data/com.android.providers.telephony/databases/mmssms.json
    /data/data/<package>/files/state.json                        each app's private data (pm clear wipes)
    /storage/emulated/0/Notes/<title>.txt                        the Notes app's notes (/sdcard/Notes)

Files are written with sorted keys and fixed timestamps from the seed, so one seed always gives
byte-identical state.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NAMESPACES = ("system", "secure", "global")
SDCARD = "storage/emulated/0"
CONTACTS_PKG = "com.android.providers.contacts"
TELEPHONY_PKG = "com.android.providers.telephony"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"
ADB_IME = "com.android.adbkeyboard/.AdbIME"
# 2024-06-03 08:00:00 UTC; seeded clocks start from here so frames and dates are reproducible.
EPOCH_BASE_MS = 1_717_401_600_000

_FIRST = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack",
          "Karen", "Liam", "Mia", "Noah", "Olivia", "Peter", "Quinn", "Rachel", "Sam", "Tina"]  # fmt: skip
_LAST = ["Anderson", "Brown", "Chen", "Davis", "Evans", "Garcia", "Johnson", "Kim", "Lee", "Martin",
         "Nguyen", "Patel", "Smith", "Taylor", "Wang", "Wilson", "Zhang"]  # fmt: skip
_INBOX = [
    "Your verification code is {code}. Do not share it with anyone.",
    "Are we still on for lunch tomorrow at 12:30?",
    "Your package #{code} has shipped and will arrive on Friday.",
    "Don't forget the team meeting at 3 pm.",
    "Happy birthday! Hope you have a great day.",
]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic, so a concurrent `cat` never sees half a file


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (json.JSONDecodeError, UnicodeDecodeError):
        logger.warning("unreadable state file, using defaults", extra={"path": str(path)})
        return default


def safe_title(title: str) -> str:
    """A note title as a file name: no path separators, no leading dots, not empty."""
    cleaned = title.replace("/", "_").replace("\\", "_").replace("\x00", "").strip().lstrip(".")
    return cleaned or "Untitled"


class PhoneState:
    """Settings, contacts, SMS, notes and per-app data of one phone, cached and written through."""

    def __init__(self, fs_root: Path) -> None:
        self.root = fs_root
        self._settings: dict[str, dict[str, str]] = {}
        self._contacts: list[dict[str, str]] = []
        self._sms: list[dict[str, str]] = []
        self.load()

    # ---- paths
    def _settings_path(self, namespace: str) -> Path:
        return self.root / "data/system/users/0" / f"settings_{namespace}.json"

    @property
    def _contacts_path(self) -> Path:
        return self.root / "data/data" / CONTACTS_PKG / "databases/contacts.json"

    @property
    def _sms_path(self) -> Path:
        return self.root / "data/data" / TELEPHONY_PKG / "databases/mmssms.json"

    def app_dir(self, package: str) -> Path:
        return self.root / "data/data" / package

    @property
    def notes_dir(self) -> Path:
        return self.root / SDCARD / "Notes"

    def exists(self) -> bool:
        return self._settings_path("global").exists()

    def load(self) -> None:
        self._settings = {ns: _read_json(self._settings_path(ns), {}) for ns in NAMESPACES}
        self._contacts = _read_json(self._contacts_path, [])
        self._sms = _read_json(self._sms_path, [])

    # ---- settings
    def settings_get(self, namespace: str, key: str) -> str | None:
        return self._settings.get(namespace, {}).get(key)

    def settings_put(self, namespace: str, key: str, value: str) -> None:
        table = self._settings.setdefault(namespace, {})
        table[key] = str(value)
        _write_json(self._settings_path(namespace), table)

    def settings_delete(self, namespace: str, key: str) -> bool:
        table = self._settings.setdefault(namespace, {})
        if key not in table:
            return False
        del table[key]
        _write_json(self._settings_path(namespace), table)
        return True

    def settings_list(self, namespace: str) -> dict[str, str]:
        return dict(self._settings.get(namespace, {}))

    def flag(self, namespace: str, key: str) -> bool:
        return (self.settings_get(namespace, key) or "0").strip() not in ("0", "", "false")

    # ---- input methods: Android keeps them in secure settings, so `settings get` agrees
    def ime_list(self, installed: list[str], enabled_only: bool) -> list[str]:
        if not enabled_only:
            return list(installed)
        enabled = (self.settings_get("secure", "enabled_input_methods") or "").split(":")
        return [i for i in installed if i in enabled]

    def ime_enable(self, ime_id: str, enabled: bool) -> bool:
        current = [i for i in (self.settings_get("secure", "enabled_input_methods") or "").split(":") if i]
        current = [i for i in current if i != ime_id] + ([ime_id] if enabled else [])
        self.settings_put("secure", "enabled_input_methods", ":".join(current))
        if not enabled and self.ime_current() == ime_id:
            self.settings_put("secure", "default_input_method", current[0] if current else LATIN_IME)
        return True

    def ime_set(self, ime_id: str) -> bool:
        self.settings_put("secure", "default_input_method", ime_id)
        return True

    def ime_current(self) -> str:
        return self.settings_get("secure", "default_input_method") or LATIN_IME

    # ---- contacts
    def contacts(self) -> list[dict[str, str]]:
        return sorted(
            (dict(c) for c in self._contacts), key=lambda c: (c["display_name"].casefold(), c["_id"])
        )

    def add_contact(self, name: str, number: str) -> str:
        new_id = str(1 + max((int(c["_id"]) for c in self._contacts), default=0))
        self._contacts.append({"_id": new_id, "display_name": name, "number": number})
        _write_json(self._contacts_path, self._contacts)
        return new_id

    def delete_contact(self, contact_id: str) -> bool:
        before = len(self._contacts)
        self._contacts = [c for c in self._contacts if c["_id"] != contact_id]
        _write_json(self._contacts_path, self._contacts)
        return len(self._contacts) != before

    def contact_name(self, number: str) -> str | None:
        wanted = _digits(number)
        for c in self._contacts:
            if wanted and _digits(c["number"]) == wanted:
                return c["display_name"]
        return None

    # ---- sms (type 1 = inbox, 2 = sent, as in Telephony.TextBasedSmsColumns)
    def sms(self, box: str = "all") -> list[dict[str, str]]:
        rows = [dict(m) for m in self._sms]
        if box == "inbox":
            rows = [m for m in rows if m["type"] == "1"]
        elif box == "sent":
            rows = [m for m in rows if m["type"] == "2"]
        return sorted(rows, key=lambda m: (-int(m["date"]), -int(m["_id"])))

    def add_sms(self, address: str, body: str, *, sent: bool, date_ms: int, read: bool = True) -> str:
        new_id = str(1 + max((int(m["_id"]) for m in self._sms), default=0))
        self._sms.append({
            "_id": new_id, "address": address, "body": body, "date": str(date_ms),
            "type": "2" if sent else "1", "read": "1" if read else "0",
        })  # fmt: skip
        _write_json(self._sms_path, self._sms)
        return new_id

    def delete_sms(self, sms_id: str) -> bool:
        before = len(self._sms)
        self._sms = [m for m in self._sms if m["_id"] != sms_id]
        _write_json(self._sms_path, self._sms)
        return len(self._sms) != before

    def mark_read(self, address: str) -> None:
        changed = False
        for m in self._sms:
            if m["address"] == address and m["read"] == "0":
                m["read"] = "1"
                changed = True
        if changed:
            _write_json(self._sms_path, self._sms)

    # ---- notes: the files are the truth, so `rm` or `echo >` from the shell shows up in the app
    def notes(self) -> list[tuple[str, str]]:
        if not self.notes_dir.is_dir():
            return []
        out = []
        for path in sorted(self.notes_dir.glob("*.txt"), key=lambda p: p.name.casefold()):
            try:
                out.append((path.stem, path.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
        return out

    def save_note(self, title: str, body: str, old_title: str | None = None) -> str:
        name = safe_title(title)
        self.notes_dir.mkdir(parents=True, exist_ok=True)
        if old_title and safe_title(old_title) != name:
            (self.notes_dir / f"{safe_title(old_title)}.txt").unlink(missing_ok=True)
        (self.notes_dir / f"{name}.txt").write_text(body, encoding="utf-8")
        return name

    def delete_note(self, title: str) -> None:
        (self.notes_dir / f"{safe_title(title)}.txt").unlink(missing_ok=True)

    # ---- per-app private data
    def app_data(self, package: str, name: str = "state") -> Any:
        """``/data/data/<package>/files/<name>.json`` (empty dict when missing)."""
        return _read_json(self.app_dir(package) / f"files/{name}.json", {})

    def save_app_data(self, package: str, data: Any, name: str = "state") -> None:
        _write_json(self.app_dir(package) / f"files/{name}.json", data)

    def clear_app(self, package: str) -> None:
        shutil.rmtree(self.app_dir(package), ignore_errors=True)
        shutil.rmtree(self.root / SDCARD / "Android/data" / package, ignore_errors=True)
        if package == CONTACTS_PKG:
            self._contacts = []
            _write_json(self._contacts_path, [])
        elif package == TELEPHONY_PKG:
            self._sms = []
            _write_json(self._sms_path, [])
        self.app_dir(package).mkdir(parents=True, exist_ok=True)

    # ---- packages installed with `pm install` (the sim's own apps are part of its image)
    @property
    def _installed_path(self) -> Path:
        return self.root / "data/system/installed_packages.json"

    def installed(self) -> dict[str, dict[str, Any]]:
        """Installed APKs by package: ``version_code``, ``version_name``, ``label``, ``path``."""
        return _read_json(self._installed_path, {})

    def install(self, package: str, record: dict[str, Any]) -> None:
        table = self.installed()
        table[package] = record
        _write_json(self._installed_path, table)
        self.app_dir(package).mkdir(parents=True, exist_ok=True)

    def uninstall(self, package: str) -> dict[str, Any] | None:
        table = self.installed()
        record = table.pop(package, None)
        if record is not None:
            _write_json(self._installed_path, table)
            shutil.rmtree(self.app_dir(package), ignore_errors=True)
        return record

    # ---- factory state
    def factory(self, seed: int, packages: list[str]) -> None:
        """Wipe everything and rebuild the state a new phone with this seed has."""
        if self.root.exists():
            shutil.rmtree(self.root)
        rng = random.Random(seed)
        for d in ("system/bin", "system/app", "vendor", "data/local/tmp", "proc", "dev", "etc",
                  f"{SDCARD}/Download", f"{SDCARD}/DCIM", f"{SDCARD}/Pictures", f"{SDCARD}/Music",
                  f"{SDCARD}/Documents", f"{SDCARD}/Android/data"):  # fmt: skip
            (self.root / d).mkdir(parents=True, exist_ok=True)
        for package in packages:
            self.app_dir(package).mkdir(parents=True, exist_ok=True)
        self._settings = _default_settings()
        self._settings["secure"]["android_id"] = f"{rng.getrandbits(64):016x}"
        for ns in NAMESPACES:
            _write_json(self._settings_path(ns), self._settings[ns])
        self._contacts = []
        names = rng.sample([f"{f} {last}" for f in _FIRST for last in _LAST], 8)
        for i, name in enumerate(names):
            number = f"+1 650-555-{rng.randrange(100, 10000):04d}"
            self._contacts.append({"_id": str(i + 1), "display_name": name, "number": number})
        _write_json(self._contacts_path, self._contacts)
        self._sms = []
        for i, template in enumerate(rng.sample(_INBOX, 3)):
            sender = self._contacts[rng.randrange(len(self._contacts))]["number"] if i else "10086"
            date = EPOCH_BASE_MS - (3 - i) * 3_600_000 - rng.randrange(0, 3_000_000)
            body = template.format(code=rng.randrange(100000, 1000000))
            self._sms.append({"_id": str(i + 1), "address": sender, "body": body,
                              "date": str(date), "type": "1", "read": "0" if i == 2 else "1"})  # fmt: skip
        _write_json(self._sms_path, self._sms)
        self.notes_dir.mkdir(parents=True, exist_ok=True)
        items = rng.sample(["Milk", "Eggs", "Bread", "Apples", "Coffee", "Rice", "Cheese", "Tomatoes"], 4)
        (self.notes_dir / "Shopping list.txt").write_text("\n".join(items) + "\n", encoding="utf-8")


def _digits(number: str) -> str:
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits[-10:]


def _default_settings() -> dict[str, dict[str, str]]:
    return {
        "global": {
            "airplane_mode_on": "0", "bluetooth_on": "0", "wifi_on": "1", "adb_enabled": "1",
            "auto_time": "1", "device_name": "PhoneFleet Sim", "development_settings_enabled": "1",
            "stay_on_while_plugged_in": "0", "window_animation_scale": "1.0",
            "transition_animation_scale": "1.0", "animator_duration_scale": "1.0",
            "mobile_data": "1", "data_roaming": "0",
        },
        "secure": {
            "android_id": "", "default_input_method": LATIN_IME,
            "enabled_input_methods": LATIN_IME, "location_mode": "3", "ui_night_mode": "1",
        },
        "system": {
            "screen_brightness": "128", "screen_off_timeout": "600000", "font_scale": "1.0",
            "system_locales": "en-US", "accelerometer_rotation": "0", "user_rotation": "0",
            "volume_music": "8", "volume_ring": "5", "time_12_24": "24",
        },
    }  # fmt: skip


__all__ = ["ADB_IME", "EPOCH_BASE_MS", "LATIN_IME", "NAMESPACES", "PhoneState", "safe_title"]
