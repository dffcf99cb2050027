"""Device profiles: a task names one (``Settings.pool.profiles``) or gives its match object inline.

The API resolves the name at submission (an unknown one answers 422); the worker resolves it again
from its own settings when it leases, so both sides share this one function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.errors import UnknownDeviceProfile

__all__ = ["profile_match"]


def profile_match(
    device_profile: dict[str, Any] | str | None, profiles: Mapping[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """What a device must match for a task's ``device_profile``: the object itself, or the match
    object of the named profile in ``profiles`` (``Settings.pool.profiles``).

    Raises ``UnknownDeviceProfile`` for a name ``profiles`` does not define. The API checks this at
    submission; the worker resolves the name again when it leases, from its own settings.
    """
    if not isinstance(device_profile, str):
        return device_profile
    try:
        return profiles[device_profile]
    except KeyError:
        raise UnknownDeviceProfile(device_profile, sorted(profiles)) from None
