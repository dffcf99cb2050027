"""PhoneFleet's error tree: the base class and the device branch.

This is the lowest layer, so every package can import it. Higher packages add their own branches
in their own ``errors.py``; the HTTP mapping lives in one place in the orchestrator.

    PhoneFleetError (code, message, retryable, context)
    ├─ DeviceError (device_id)
    │  ├─ DeviceOffline          the phone cannot be reached or dropped the connection   [retryable]
    │  ├─ DeviceTimeout          a command did not finish within its deadline             [retryable]
    │  ├─ CommandFailed          the command ran and failed (cmd, exit_code, output)
    │  └─ AdbProtocolError       the peer spoke something that is not the adb protocol
    └─ CapacityError             no phone can be had now (the API answers 503)
       ├─ NoDeviceAvailable      no idle phone matched before the wait's deadline         [retryable]
       └─ PersonalPhoneBusy      a personal phone stayed held by another task or session  [retryable]
    PersonalPhoneWakeFailed      a personal phone's device could not be started with its data
"""

from __future__ import annotations

from typing import Any


class PhoneFleetError(Exception):
    """Base of every error PhoneFleet raises on purpose."""

    code: str = "phonefleet_error"
    retryable: bool = False

    def __init__(self, message: str, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = dict(context or {})

    def __str__(self) -> str:
        return self.message


class DeviceError(PhoneFleetError):
    """Something went wrong talking to a phone."""

    code = "device_error"

    def __init__(
        self,
        message: str,
        *,
        device_id: str | None = None,
        command: str | None = None,
        output: str = "",
        context: dict[str, Any] | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.setdefault("device_id", device_id)
        if command is not None:
            ctx.setdefault("command", command)
        super().__init__(message, context=ctx)
        self.device_id = device_id
        self.command = command
        self.output = output


class DeviceOffline(DeviceError):
    code = "device_offline"
    retryable = True


class DeviceTimeout(DeviceError):
    code = "device_timeout"
    retryable = True


class CommandFailed(DeviceError):
    """The command ran on the phone and reported failure (non-zero exit or an error line)."""

    code = "command_failed"

    def __init__(
        self,
        message: str,
        *,
        device_id: str | None = None,
        command: str | None = None,
        exit_code: int | None = None,
        output: str = "",
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, device_id=device_id, command=command, output=output, context=context)
        self.exit_code = exit_code


class AdbProtocolError(DeviceError):
    code = "adb_protocol_error"


class CapacityError(PhoneFleetError):
    """No phone can be had now: the pool is fully leased, or a provider is at its limit."""

    code = "capacity_error"


class NoDeviceAvailable(CapacityError):
    """No idle phone matching the profile came free before the wait's deadline."""

    code = "no_device_available"
    retryable = True


class PersonalPhoneBusy(CapacityError):
    """A personal phone stayed held (or waking, or going to sleep) past the wait's deadline."""

    code = "personal_phone_busy"
    retryable = True


class PersonalPhoneWakeFailed(PhoneFleetError):
    """The pool could not start a device with the personal phone's data (the reason is in ``message``)."""

    code = "personal_phone_wake_failed"


__all__ = [
    "AdbProtocolError",
    "CapacityError",
    "CommandFailed",
    "DeviceError",
    "DeviceOffline",
    "DeviceTimeout",
    "NoDeviceAvailable",
    "PersonalPhoneBusy",
    "PersonalPhoneWakeFailed",
    "PhoneFleetError",
]
