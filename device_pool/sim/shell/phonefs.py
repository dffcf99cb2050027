"""The phone's file system as shell commands see it: device paths in, OSError out.

Every path goes through ``phone.host_path``; writes to a read-only area raise EROFS as the kernel
would. A few character devices (/dev/null, /dev/zero, /dev/tty, /dev/stdout) have no host file and
are handled here.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device_pool.sim.phone import VirtualPhone

__all__ = [
    "DISCARD_PATHS",
    "describe_error",
    "expand_glob",
    "has_glob",
    "host",
    "read_bytes",
    "require_writable",
]

# Writing here throws the data away; reading gives nothing.
DISCARD_PATHS = frozenset({"/dev/null", "/dev/zero"})


def describe_error(exc: OSError) -> str:
    """The libc text for an OSError ("No such file or directory"), as toybox prints it."""
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc)


def host(phone: VirtualPhone, device_path: str) -> Path:
    return phone.host_path(device_path)


def _raise(code: int, device_path: str) -> None:
    raise OSError(code, os.strerror(code), device_path)


def require_writable(phone: VirtualPhone, device_path: str) -> None:
    """Raise EROFS for a path on a read-only mount (checked after ENOENT of the parent, as the kernel)."""
    if phone.is_read_only(device_path):
        parent = phone.host_path(posixpath.dirname(device_path) or "/")
        if not parent.exists():
            _raise(errno.ENOENT, device_path)
        _raise(errno.EROFS, device_path)


def read_bytes(phone: VirtualPhone, device_path: str) -> bytes:
    if device_path in DISCARD_PATHS:
        return b""
    path = phone.host_path(device_path)
    if path.is_dir():
        _raise(errno.EISDIR, device_path)
    return path.read_bytes()


def write_bytes(phone: VirtualPhone, device_path: str, data: bytes, append: bool = False) -> None:
    if device_path in DISCARD_PATHS:
        return
    require_writable(phone, device_path)
    path = phone.host_path(device_path)
    if path.is_dir():
        _raise(errno.EISDIR, device_path)
    with path.open("ab" if append else "wb") as fh:
        fh.write(data)


def has_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def expand_glob(phone: VirtualPhone, cwd: str, pattern: str) -> list[str]:
    """Paths matching a shell pattern, in the pattern's own form (relative stays relative), sorted.

    ``pattern`` uses fnmatch syntax; characters that were quoted in the command line arrive escaped
    as ``[*]``. A component without magic is taken literally; dot files match only an explicit dot.
    """
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p]
    results = ["/" if absolute else ""]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        nxt: list[str] = []
        for prefix in results:
            base = prefix if absolute or prefix else ""
            device_dir = posixpath.join(cwd, base) if not absolute else (base or "/")
            if not has_glob(part):
                literal = _unescape(part)
                candidate = posixpath.join(prefix, literal) if prefix else literal
                if last or phone.host_path(posixpath.join(cwd, candidate)).is_dir():
                    nxt.append(candidate)
                continue
            try:
                entries = sorted(p.name for p in phone.host_path(device_dir).iterdir())
            except OSError:
                continue
            for name in entries:
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    nxt.append(posixpath.join(prefix, name) if prefix else name)
        results = nxt
        if not results:
            return []
    if pattern.endswith("/"):
        results = [r + "/" for r in results if phone.host_path(posixpath.join(cwd, r)).is_dir()]
    # Literal components must exist for the whole path to count as a match.
    return sorted(r for r in results if phone.host_path(posixpath.join(cwd, r)).exists())


def _unescape(part: str) -> str:
    # Undo the [*] / [?] / [[] escaping the expander applies to quoted characters.
    out: list[str] = []
    i = 0
    while i < len(part):
        if part[i] == "[" and i + 2 < len(part) and part[i + 2] == "]":
            out.append(part[i + 1])
            i += 3
        else:
            out.append(part[i])
            i += 1
    return "".join(out)
