"""What an APK says about itself: the package name and version in its binary AndroidManifest.xml.

The virtual phone's package manager reads it to install, and the device API to check an upload and
name its package before pushing it; it lives below both (as ``android.py``), since neither may
import the other.

An APK is a zip whose ``AndroidManifest.xml`` is Android's binary XML, a sequence of chunks each
headed by ``type:u16 header_size:u16 size:u32`` (little-endian): a string pool (type 0x0001), a
resource-id map (0x0180), namespace starts and ends (0x0100/0x0101) and element starts and ends
(0x0102/0x0103). An element start holds, after its 16-byte node header, ``ns:u32 name:u32
attr_start:u16 attr_size:u16 attr_count:u16`` and three more u16; each attribute is ``ns:u32
name:u32 raw:u32`` and a typed value ``size:u16 0:u8 type:u8 data:u32``. Names and string values are
indexes into the pool. docs/virtual-phone.md ("Installing apps") says what the phone keeps.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass

__all__ = ["ApkError", "ApkManifest", "read_manifest"]

_CHUNK = struct.Struct("<HHI")
_STRING_POOL, _XML, _START_ELEMENT = 0x0001, 0x0003, 0x0102
_UTF8_FLAG = 1 << 8
_NO_INDEX = 0xFFFFFFFF
_TYPE_STRING, _TYPE_INT_DEC, _TYPE_INT_HEX = 0x03, 0x10, 0x11
_ANDROID_NS = "http://schemas.android.com/apk/res/android"


class ApkError(Exception):
    """Not an APK the package manager can parse; ``reason`` is Android's failure code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ApkManifest:
    package: str
    version_code: int = 0
    version_name: str | None = None
    label: str | None = None  # a literal android:label; a resource reference is not resolved


def read_manifest(apk: bytes) -> ApkManifest:
    """The manifest of an APK's bytes; raises ApkError as ``pm install`` would fail."""
    try:
        with zipfile.ZipFile(io.BytesIO(apk)) as archive:
            xml = archive.read("AndroidManifest.xml")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
        raise ApkError("INSTALL_PARSE_FAILED_NOT_APK", f"not an APK ({exc})") from exc
    try:
        return _manifest(xml)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", f"unreadable binary XML ({exc})") from exc


def _manifest(xml: bytes) -> ApkManifest:
    kind, header, size = _CHUNK.unpack_from(xml, 0)
    if kind != _XML:
        raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", "AndroidManifest.xml is not binary XML")
    strings: list[str] = []
    found: dict[str, dict[tuple[str, str], str | int]] = {}
    pos, end = header, min(size, len(xml))
    while pos + _CHUNK.size <= end:
        kind, header, size = _CHUNK.unpack_from(xml, pos)
        if size < _CHUNK.size:
            raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", "a chunk of size 0")
        if kind == _STRING_POOL:
            strings = _string_pool(xml, pos)
        elif kind == _START_ELEMENT:
            name, attrs = _element(xml, pos, header, strings)
            if name in ("manifest", "application") and name not in found:
                found[name] = attrs
        pos += size
    manifest = found.get("manifest")
    package = manifest.get(("", "package")) if manifest else None
    if not isinstance(package, str) or not package:
        raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED", "<manifest> has no package attribute")
    code = manifest.get((_ANDROID_NS, "versionCode"), 0) if manifest else 0
    version = manifest.get((_ANDROID_NS, "versionName")) if manifest else None
    label = found.get("application", {}).get((_ANDROID_NS, "label"))
    return ApkManifest(
        package,
        code if isinstance(code, int) else int(code) if str(code).isdigit() else 0,
        version if isinstance(version, str) else None,
        label if isinstance(label, str) else None,
    )


def _string_pool(xml: bytes, at: int) -> list[str]:
    count, _styles, flags, strings_start, _styles_start = struct.unpack_from("<IIIII", xml, at + 8)
    offsets = struct.unpack_from(f"<{count}I", xml, at + 28)
    base = at + strings_start
    utf8 = bool(flags & _UTF8_FLAG)
    return [_utf8_string(xml, base + o) if utf8 else _utf16_string(xml, base + o) for o in offsets]


def _utf8_string(xml: bytes, at: int) -> str:
    # Two lengths, each one byte or (high bit set) two: characters, then bytes.
    at += 2 if xml[at] & 0x80 else 1
    length = xml[at]
    if length & 0x80:
        length = ((length & 0x7F) << 8) | xml[at + 1]
        at += 1
    at += 1
    return xml[at : at + length].decode("utf-8")


def _utf16_string(xml: bytes, at: int) -> str:
    (length,) = struct.unpack_from("<H", xml, at)
    at += 2
    if length & 0x8000:
        (low,) = struct.unpack_from("<H", xml, at)
        length = ((length & 0x7FFF) << 16) | low
        at += 2
    return xml[at : at + 2 * length].decode("utf-16-le")


def _element(xml: bytes, at: int, header: int, strings: list[str]) -> tuple[str, dict[tuple[str, str], str | int]]:
    ext = at + header
    _ns, name, attr_start, attr_size, attr_count = struct.unpack_from("<IIHHH", xml, ext)
    attrs: dict[tuple[str, str], str | int] = {}
    for i in range(attr_count):
        a = ext + attr_start + i * attr_size
        ns, attr_name, raw, _size, _res0, dtype, data = struct.unpack_from("<IIIHBBI", xml, a)
        key = ("" if ns == _NO_INDEX else strings[ns], strings[attr_name])
        if raw != _NO_INDEX:
            attrs[key] = strings[raw]
        elif dtype == _TYPE_STRING:
            attrs[key] = strings[data]
        elif dtype in (_TYPE_INT_DEC, _TYPE_INT_HEX):
            attrs[key] = data
    return strings[name], attrs
