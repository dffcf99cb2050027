"""The driver's one boundary where low-level failures become PhoneFleet's typed device errors.

Everything below this module (sockets, the smart-socket framing, shell v2 packets, sync) raises
plain Python errors or the small private exceptions defined here; ``adb_errors`` maps them, once,
to the most specific class of ``device_pool.errors``:

    TimeoutError (asyncio.timeout, socket)          → DeviceTimeout
    IncompleteReadError, OSError, StreamClosed      → DeviceOffline
    ServerRefused (the adb server said FAIL)        → DeviceOffline | CommandFailed | AdbProtocolError
    RemoteFileError (sync FAIL)                     → CommandFailed
    ProtocolViolation, struct.error, bad bytes      → AdbProtocolError

The driver also adds two leaves under ``CommandFailed`` for requests the phone cannot serve:
``UnknownApp`` and ``TextInputUnsupported``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from device_pool.errors import (
    AdbProtocolError,
    CommandFailed,
    DeviceError,
    DeviceOffline,
    DeviceTimeout,
)


class UnknownApp(CommandFailed):
    """``launch`` got a name that is neither a known app nor a package installed on the phone."""

    code = "unknown_app"


class TextInputUnsupported(CommandFailed):
    """The text cannot be typed: non-ASCII text and no ADB Keyboard on the phone."""

    code = "text_input_unsupported"


class ServerRefused(Exception):
    """The adb server answered FAIL; the message is the server's own."""


class ProtocolViolation(Exception):
    """Bytes that do not follow the smart-socket, shell v2 or sync protocol."""


class StreamClosed(Exception):
    """A device stream ended before its natural end (no exit status, a truncated frame)."""

    def __init__(self, message: str, partial: bytes = b"") -> None:
        super().__init__(message)
        self.partial = partial


class RemoteFileError(Exception):
    """The phone's sync service answered FAIL (no such file, read-only file system)."""


# FAIL messages from the adb server that mean "this phone is not reachable right now".
_OFFLINE_MARKERS = (
    "offline",
    "not found",
    "no such device",
    "no devices",
    "no emulators",
    "unauthorized",
    "authorizing",
    "connecting",
    "device still",
    "failed to connect",
    "cannot connect",
    "unable to connect",
)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


@contextmanager
def adb_errors(device_id: str | None, command: str | None, *, timeout: float | None = None) -> Iterator[None]:
    """Re-raise anything below the driver as the most specific ``DeviceError`` (``raise … from exc``)."""
    try:
        yield
    except DeviceError:
        raise
    # TimeoutError first: it is a subclass of OSError since 3.3, and asyncio's since 3.11.
    except TimeoutError as exc:
        limit = f" within {timeout:g} s" if timeout is not None else ""
        raise DeviceTimeout(
            f"{device_id or 'adb'}: `{command}` did not finish{limit}", device_id=device_id, command=command
        ) from exc
    except asyncio.IncompleteReadError as exc:
        raise DeviceOffline(
            f"{device_id or 'adb'}: connection closed in the middle of `{command}`",
            device_id=device_id,
            command=command,
            output=_decode(exc.partial),
        ) from exc
    except StreamClosed as exc:
        raise DeviceOffline(
            f"{device_id or 'adb'}: {exc} during `{command}`",
            device_id=device_id,
            command=command,
            output=_decode(exc.partial),
        ) from exc
    except ServerRefused as exc:
        message = str(exc)
        lowered = message.lower()
        if any(marker in lowered for marker in _OFFLINE_MARKERS):
            raise DeviceOffline(
                f"{device_id or 'adb'}: {message} (during `{command}`)",
                device_id=device_id,
                command=command,
                output=message,
            ) from exc
        if lowered.strip() == "closed":
            # The device answered the OPEN with CLSE: it does not offer this service.
            raise CommandFailed(
                f"{device_id or 'adb'}: the phone refused the service for `{command}`",
                device_id=device_id,
                command=command,
                output=message,
            ) from exc
        raise AdbProtocolError(
            f"{device_id or 'adb'}: adb server refused `{command}`: {message}",
            device_id=device_id,
            command=command,
            output=message,
        ) from exc
    except RemoteFileError as exc:
        raise CommandFailed(
            f"{device_id or 'adb'}: `{command}` failed: {exc}",
            device_id=device_id,
            command=command,
            output=str(exc),
        ) from exc
    except ConnectionRefusedError as exc:
        raise DeviceOffline(
            f"adb server unreachable for `{command}`: {exc}", device_id=device_id, command=command
        ) from exc
    except OSError as exc:
        raise DeviceOffline(
            f"{device_id or 'adb'}: connection lost during `{command}`: {exc}",
            device_id=device_id,
            command=command,
        ) from exc
    except (ProtocolViolation, struct.error, UnicodeDecodeError) as exc:
        raise AdbProtocolError(
            f"{device_id or 'adb'}: protocol error during `{command}`: {exc}",
            device_id=device_id,
            command=command,
        ) from exc
