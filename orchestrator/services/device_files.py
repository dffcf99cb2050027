"""Device file paths: which paths on a session's phone the device API may push to and pull from.

A path must be absolute, name a file (not a folder) strictly inside one of ``device_api.file_roots``
(``/sdcard/`` by default: the user's storage), and hold no ``.``/``..`` part, NUL or other control
character. What the text alone cannot show — a symbolic link on the way, which could lead out of the
root — is asked of the phone (``links``): every part below the root is ``lstat``-ed before the
transfer, and a link refuses the call. The root itself is the operator's choice and may be a link
(``/sdcard`` is one on Android).
"""

from __future__ import annotations

import stat
from collections.abc import Sequence

from device_pool.driver.sync import FileStat
from orchestrator.errors import PathNotAllowed

__all__ = ["MAX_PATH_BYTES", "allowed_path", "below_root", "refuse_links"]

MAX_PATH_BYTES = 1024  # the sync protocol's limit on a path


def allowed_path(path: str, roots: Sequence[str]) -> tuple[str, str]:
    """``(path, root)``: the path with repeated slashes folded, and the root it lies in; raises
    ``PathNotAllowed`` with the reason otherwise."""
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in path):
        raise PathNotAllowed("the path holds a NUL or another control character")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise PathNotAllowed(f"the path is longer than {MAX_PATH_BYTES} bytes")
    if not path.startswith("/"):
        raise PathNotAllowed(f"the path must be absolute (start with '/'), inside {_listed(roots)}: {path!r}")
    parts = [part for part in path.split("/") if part]
    if "." in parts or ".." in parts:
        raise PathNotAllowed(f"the path may not hold '.' or '..' parts: {path!r}")
    if path.endswith("/") or not parts:
        raise PathNotAllowed(f"the path names a folder; give a file's path: {path!r}")
    folded = "/" + "/".join(parts)
    for root in roots:
        if folded.startswith(root) and len(folded) > len(root):
            return folded, root
    raise PathNotAllowed(f"the path is outside the allowed folders {_listed(roots)}: {path!r}")


def below_root(path: str, root: str) -> list[str]:
    """The paths of each part below ``root``, outermost first: for ``/sdcard/a/b.txt`` in
    ``/sdcard/``, ``/sdcard/a`` and ``/sdcard/a/b.txt``."""
    parts = path[len(root) :].split("/")
    return [root + "/".join(parts[: i + 1]) for i in range(len(parts))]


def refuse_links(paths: Sequence[str], stats: Sequence[FileStat]) -> FileStat:
    """The last path's stat, after checking that no part is a symbolic link and that every folder on
    the way is one; raises ``PathNotAllowed``."""
    for path, found in zip(paths, stats, strict=True):
        if found.error:
            break  # not there: neither are the parts below it (a push creates them)
        if stat.S_ISLNK(found.mode):
            raise PathNotAllowed(f"{path} is a symbolic link, which could lead outside the allowed folders")
        if path != paths[-1] and not stat.S_ISDIR(found.mode):
            raise PathNotAllowed(f"{path} is not a folder, so nothing can lie inside it")
    last = stats[-1]
    if not last.error and stat.S_ISDIR(last.mode):
        raise PathNotAllowed(f"{paths[-1]} is a folder; give a file's path")
    return last


def _listed(roots: Sequence[str]) -> str:
    return ", ".join(roots)
