"""The adb transport's message framing: 24-byte headers, commands, and the banner.

Each message is six little-endian u32 (command, arg0, arg1, data_length, data_check,
magic = command ^ 0xFFFFFFFF), then the payload.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

NAMES = {
    A_CNXN: "CNXN",
    A_AUTH: "AUTH",
    A_OPEN: "OPEN",
    A_OKAY: "OKAY",
    A_CLSE: "CLSE",
    A_WRTE: "WRTE",
    A_STLS: "STLS",
}

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD = 1024 * 1024
# CNXN/AUTH payloads must fit this on the host side, so the banner stays under it.
MAX_BANNER = 4096

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3

_HEADER = struct.Struct("<6I")
HEADER_SIZE = _HEADER.size

# The features we implement. Never advertise what is not implemented:
# compression, delayed_ack, cmd/abb would change what clients send.
FEATURES = ("shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir", "fixed_push_symlink_timestamp", "apex")


class ProtocolViolation(Exception):
    """The peer sent bytes that are not an adb message; the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.command, hex(self.command))


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def encode(msg: Message, with_checksum: bool = False) -> bytes:
    check = checksum(msg.data) if with_checksum else 0
    header = _HEADER.pack(msg.command, msg.arg0, msg.arg1, len(msg.data), check, msg.command ^ 0xFFFFFFFF)
    return header + msg.data


async def read_message(reader: asyncio.StreamReader, max_payload: int = MAX_PAYLOAD) -> Message:
    """Read one message; raises IncompleteReadError at EOF and ProtocolViolation on garbage."""
    header = await reader.readexactly(HEADER_SIZE)
    command, arg0, arg1, length, _check, magic = _HEADER.unpack(header)
    # Hosts do not verify checksums and neither do we; the magic we do check.
    if magic != command ^ 0xFFFFFFFF or command not in NAMES:
        raise ProtocolViolation(f"bad header {header.hex()}")
    if length > max_payload:
        raise ProtocolViolation(f"payload of {length} bytes exceeds {max_payload}")
    data = await reader.readexactly(length) if length else b""
    return Message(command, arg0, arg1, data)


def device_banner(props: dict[str, str], features: tuple[str, ...] = FEATURES) -> bytes:
    """The CNXN payload a device sends: ``device::key=value;...;features=...``."""
    keys = ("ro.product.name", "ro.product.model", "ro.product.device")
    parts = [f"{k}={props.get(k, '')}" for k in keys]
    parts.append("features=" + ",".join(features))
    banner = ("device::" + ";".join(parts)).encode()
    if len(banner) > MAX_BANNER:
        raise ValueError("device banner exceeds 4 KiB")
    return banner
