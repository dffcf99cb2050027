"""What a template reads and writes on a phone, through Android's own interfaces over ADB.

``EvalPhone`` wraps the driver's ``AdbDevice`` (or anything with its ``shell``/``pull``/``push``/
``foreground``/``ui_dump``): settings (``settings get/put``), content providers (``content
query/insert/delete``: contacts, SMS), files (``cat``, ``ls``, sync), the app in front (``dumpsys``),
the UI dump (``uiautomator dump``) and ``pm clear`` / ``am force-stop``. Nothing here knows which
phone it talks to: the same calls work on the virtual phone, redroid and a real phone.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any, Protocol

from device_pool.driver.shell import ShellOutput

__all__ = ["CONTACTS_PROVIDER", "SMS_PROVIDER", "EvalPhone", "PhoneDevice"]

CONTACTS_PROVIDER = "com.android.providers.contacts"
SMS_PROVIDER = "com.android.providers.telephony"
NOTES_DIR = "/sdcard/Notes"
SHOP = "com.phonefleet.shop"
BANK = "com.phonefleet.bank"

_ROW = re.compile(r"^Row: \d+ (.*)$")


class PhoneDevice(Protocol):
    """The driver calls a template needs (``device_pool.driver.AdbDevice`` has them all)."""

    async def shell(self, command: str, *, timeout: float | None = None, check: bool = False) -> ShellOutput: ...
    async def foreground(self, *, timeout: float | None = None) -> tuple[str, str]: ...
    async def ui_dump(self, *, timeout: float | None = None) -> str: ...


def _q(value: str) -> str:
    return shlex.quote(value)


class EvalPhone:
    """A phone as a template sees it."""

    def __init__(self, device: PhoneDevice) -> None:
        self.device = device

    async def sh(self, command: str) -> str:
        """``command``'s stdout; a non-zero exit raises the driver's CommandFailed."""
        return (await self.device.shell(command, check=True)).stdout

    # ---- settings
    async def setting(self, namespace: str, key: str) -> str:
        return (await self.sh(f"settings get {namespace} {key}")).strip()

    async def put_setting(self, namespace: str, key: str, value: str) -> None:
        await self.sh(f"settings put {namespace} {key} {_q(value)}")

    # ---- content providers
    async def rows(self, uri: str, projection: str | None = None) -> list[dict[str, str]]:
        """``content query`` rows as dicts (``No result found.`` is no rows)."""
        command = f"content query --uri {uri}" + (f" --projection {projection}" if projection else "")
        rows = []
        for line in (await self.sh(command)).splitlines():
            m = _ROW.match(line.strip())
            if m:
                rows.append(dict(_pairs(m.group(1))))
        return rows

    async def contacts(self) -> list[dict[str, str]]:
        return await self.rows("content://contacts/phones")

    async def sms(self, box: str = "") -> list[dict[str, str]]:
        return await self.rows(f"content://sms/{box}".rstrip("/"))

    async def add_contact(self, name: str, number: str) -> None:
        await self.sh(f"content insert --uri content://contacts/people --bind name:s:{_q(name)} "
                      f"--bind number:s:{_q(number)}")  # fmt: skip

    async def add_sms(self, address: str, body: str, *, sent: bool = False) -> None:
        box = "sent" if sent else "inbox"
        await self.sh(f"content insert --uri content://sms/{box} --bind address:s:{_q(address)} "
                      f"--bind body:s:{_q(body)}")  # fmt: skip

    # ---- files
    async def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""
        out = await self.device.shell(f"cat {_q(path)}")
        return out.stdout if out.exit_code == 0 else None

    async def write(self, path: str, text: str) -> None:
        parent = path.rsplit("/", 1)[0]
        await self.sh(f"mkdir -p {_q(parent)} && echo -n {_q(text)} > {_q(path)}")

    async def listdir(self, path: str) -> list[str]:
        out = await self.device.shell(f"ls {_q(path)}")
        return sorted(out.stdout.split("\n")) if out.exit_code == 0 and out.stdout.strip() else []

    async def notes(self) -> dict[str, str]:
        """The Notes app's notes: title → body (``/sdcard/Notes/<title>.txt``)."""
        found = {}
        for name in await self.listdir(NOTES_DIR):
            if name.endswith(".txt"):
                found[name[:-4]] = await self.read(f"{NOTES_DIR}/{name}") or ""
        return found

    async def app_json(self, package: str, name: str = "state") -> Any:
        """An app's private JSON file (``/data/data/PKG/files/NAME.json``); {} when missing."""
        text = await self.read(f"/data/data/{package}/files/{name}.json")
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    # ---- the screen
    async def foreground_package(self) -> str:
        return (await self.device.foreground())[0]

    async def ui_dump(self) -> str:
        return await self.device.ui_dump()

    async def tap(self, point: tuple[int, int]) -> None:
        """A person's tap at a point of the model's 0–999 grid (``input tap`` in pixels)."""
        out = await self.sh("wm size")
        m = re.search(r"(\d+)x(\d+)\s*$", out.strip())
        width, height = (int(m.group(1)), int(m.group(2))) if m else (1080, 2400)
        await self.sh(f"input tap {round(point[0] * width / 1000)} {round(point[1] * height / 1000)}")

    # ---- start states
    async def clear(self, *packages: str) -> None:
        """``pm clear`` each package: its data gone, its process stopped (as on Android)."""
        for package in packages:
            await self.sh(f"pm clear {package}")

    async def home(self) -> None:
        await self.sh("input keyevent KEYCODE_HOME")

    async def force_stop(self, *packages: str) -> None:
        for package in packages:
            await self.sh(f"am force-stop {package}")

    async def digest(self) -> str:
        """A digest of what a task could change: settings, contacts, SMS, notes, the shop's and the
        bank's data (an infeasible task must leave it as it was)."""
        parts: list[Any] = []
        for namespace in ("global", "secure", "system"):
            # The agent's typing may switch the input method and put it back: not the task's doing.
            listed = await self.sh(f"settings list {namespace}")
            parts.append([line for line in listed.splitlines() if "input_method" not in line])
        shop = {k: v for k, v in (await self.app_json(SHOP)).items() if k != "launches"}  # a launch counter
        parts += [await self.contacts(), await self.sms(), await self.notes()]
        parts += [shop, await self.app_json(SHOP, "orders"), await self.app_json(BANK)]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _pairs(text: str) -> list[tuple[str, str]]:
    """``a=1, b=x, y`` as Android's content tool prints it (values may hold ", ": split on known keys)."""
    keys = list(re.finditer(r"(?:^|, )([A-Za-z_][A-Za-z0-9_]*)=", text))
    out = []
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(text)
        out.append((m.group(1), text[m.end() : end]))
    return out

