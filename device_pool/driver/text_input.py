"""Typing text into the focused field: ADB Keyboard broadcasts when installed, ``input text`` otherwise."""

from __future__ import annotations

import logging
import shlex
from typing import TYPE_CHECKING

from device_pool.driver.errors import TextInputUnsupported
from device_pool.driver.keys import KEYCODES, adb_keyboard_message, input_text_argument

if TYPE_CHECKING:
    from device_pool.driver.device import AdbDevice

logger = logging.getLogger(__name__)

ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"

# Characters per ADB_INPUT_B64 broadcast: keeps each shell command line far below adb's limits.
_BROADCAST_CHUNK = 2000
# How many DEL presses clear a field when no ADB Keyboard can clear it in one go.
_FALLBACK_CLEAR_PRESSES = 100


class TextEntry:
    """A phone's text input state: whether ADB Keyboard exists, and the keyboard it replaced."""

    def __init__(self, device: AdbDevice, *, use_adb_keyboard: bool | None = None) -> None:
        self._device = device
        # None: use ADB Keyboard when the phone has it; True: require it; False: never use it.
        self.use_adb_keyboard = use_adb_keyboard
        self._available: bool | None = None
        self.previous_ime: str | None = None

    def forget(self) -> None:
        """Drop what was learnt about the phone (after a reconnect it may be another phone state)."""
        self._available = None

    async def _installed(self, timeout: float | None) -> bool:
        if self._available is None:
            # `-a` also lists installed but disabled keyboards; a fresh ADB Keyboard starts disabled.
            listing = await self._device.shell("ime list -a -s", timeout=timeout)
            if listing.exit_code != 0:
                listing = await self._device.shell("ime list -s", timeout=timeout)
            self._available = ADB_KEYBOARD_IME in listing.stdout.split()
        return self._available

    async def adb_keyboard(self, *, timeout: float | None = None) -> bool:
        """Make ADB Keyboard the current keyboard if it should be used; False to fall back to ``input text``."""
        if self.use_adb_keyboard is False:
            return False
        if not await self._installed(timeout):
            if self.use_adb_keyboard:
                raise TextInputUnsupported(
                    f"{self._device.serial}: ADB Keyboard ({ADB_KEYBOARD_IME}) is not installed",
                    device_id=self._device.serial,
                    command="ime list -a -s",
                )
            return False
        # Checked on every call: a user who took over may have switched keyboards.
        current = await self._device.shell("settings get secure default_input_method", timeout=timeout)
        active = current.stdout.strip()
        if active != ADB_KEYBOARD_IME:
            await self._device.run_input(
                f"ime enable {ADB_KEYBOARD_IME} && ime set {ADB_KEYBOARD_IME}", timeout=timeout
            )
            if self.previous_ime is None and active and active != "null":
                self.previous_ime = active
            logger.info("switched to ADB Keyboard", extra={"serial": self._device.serial})
        return True

    async def type_text(self, text: str, *, clear: bool = True, timeout: float | None = None) -> None:
        """Type ``text`` into the focused field, after emptying it when ``clear`` is set."""
        if await self.adb_keyboard(timeout=timeout):
            lines = ["am broadcast -a ADB_CLEAR_TEXT"] if clear else []
            for start in range(0, len(text), _BROADCAST_CHUNK):
                message = adb_keyboard_message(text[start : start + _BROADCAST_CHUNK])
                lines.append(f"am broadcast -a ADB_INPUT_B64 --es msg {message}")
            if lines:
                await self._device.run_input(" && ".join(lines), timeout=timeout)
            return
        if not text.isascii():
            raise TextInputUnsupported(
                f"{self._device.serial}: cannot type non-ASCII text without ADB Keyboard "
                f"({ADB_KEYBOARD_IME}); install it on the phone",
                device_id=self._device.serial,
                command="input text",
                output=text[:200],
            )
        if clear:
            await self.clear_text(timeout=timeout)
        # `input text` cannot type a newline: press ENTER between lines instead.
        parts: list[str] = []
        for index, line in enumerate(text.split("\n")):
            if index:
                parts.append(f"input keyevent {KEYCODES['enter']}")
            if line:
                try:
                    parts.append(f"input text {input_text_argument(line)}")
                except ValueError as exc:
                    raise TextInputUnsupported(
                        f"{self._device.serial}: {exc}",
                        device_id=self._device.serial,
                        command="input text",
                        output=line[:200],
                    ) from exc
        if parts:
            await self._device.run_input(" && ".join(parts), timeout=timeout)

    async def clear_text(self, *, timeout: float | None = None) -> None:
        """Empty the focused field (ADB_CLEAR_TEXT, or move to the end and press DEL repeatedly)."""
        if await self.adb_keyboard(timeout=timeout):
            await self._device.run_input("am broadcast -a ADB_CLEAR_TEXT", timeout=timeout)
            return
        deletes = " ".join([str(KEYCODES["delete"])] * _FALLBACK_CLEAR_PRESSES)
        await self._device.run_input(
            f"input keyevent {KEYCODES['move_end']} && input keyevent {deletes}", timeout=timeout
        )

    async def restore_ime(self, *, timeout: float | None = None) -> None:
        """Switch back to the keyboard that was active before ADB Keyboard; nothing to do if none."""
        if self.previous_ime is None:
            return
        await self._device.run_input(f"ime set {shlex.quote(self.previous_ime)}", timeout=timeout)
        logger.info("restored keyboard", extra={"serial": self._device.serial})
        self.previous_ime = None
