"""Stable stand-ins for values Android makes up at run time (object hashes, task ids, pids, uids).

Clients parse these (``ActivityRecord{1a2b3c4 u0 pkg/.Act t12}``) but never rely on their values,
so they are derived from the names they describe: the same app shows the same numbers every time.
"""

from __future__ import annotations

import zlib

__all__ = [
    "app_uid",
    "is_system_package",
    "object_hash",
    "pid_of",
    "short_component",
    "split_component",
    "task_id",
]

# Installed by the user on a real phone even though the name looks like a platform package.
_USER_INSTALLED = frozenset({"com.android.adbkeyboard"})


def object_hash(*names: str) -> str:
    """Like Integer.toHexString(System.identityHashCode(obj)): 7 hex digits."""
    return f"{zlib.crc32('|'.join(names).encode()) & 0xFFFFFFF:07x}"


def task_id(package: str) -> int:
    return 10 + zlib.crc32(package.encode()) % 90


def pid_of(package: str) -> int:
    return 2000 + zlib.crc32(("pid", package).__repr__().encode()) % 28000


def app_uid(package: str) -> int:
    if is_system_package(package):
        return 1000
    return 10100 + zlib.crc32(package.encode()) % 100


def is_system_package(package: str) -> bool:
    if package in _USER_INSTALLED:
        return False
    return package == "android" or package.startswith(("com.android.", "com.google.android."))


def short_component(package: str, cls: str) -> str:
    """ComponentName.flattenToShortString: "pkg/.Act" when the class lives in the package."""
    if cls.startswith(package + "."):
        return f"{package}/{cls[len(package) :]}"
    return f"{package}/{cls}"


def split_component(component: str) -> tuple[str, str]:
    """ "pkg/.Act" or "pkg/full.Act" -> (pkg, fully.qualified.Act), as unflattenFromString."""
    package, _, cls = component.partition("/")
    if cls.startswith("."):
        cls = package + cls
    return package, cls
