"""What the live view is told about the screen beyond its video: whether it is protected.

A secure window (FLAG_SECURE: a bank's login, a password prompt) records and captures black on
Android, so a viewer would see a black phone with no explanation. The ``control`` channel's
``{"type": "screen"}`` request is answered with ``describe_screen``: ``protected`` (the phone's
screenshot is a secure window's black, ``is_secure_frame``) and, when it is, the elements of the
view tree, which a secure window still gives: each one's bounds as fractions (0–1) of the screen,
its label, kind, and whether it can be tapped or typed in, is a password field or has focus. The
dashboard draws them as outlines over the black video, so a person can still log in through the
phone controls (docs/live-view.md, "Protected screens").
"""

from __future__ import annotations

from typing import Any

from device_pool.driver import AdbDevice, is_secure_frame
from device_pool.driver.ui_tree import ui_elements

__all__ = ["describe_screen"]


async def describe_screen(phone: AdbDevice) -> dict[str, Any]:
    """``{"protected": bool, "elements": [...]}`` (elements only listed for a protected screen)."""
    image = await phone.screenshot("raw")
    if not is_secure_frame(image):
        return {"protected": False, "elements": []}
    elements = [e.as_json(image.size) for e in ui_elements(await phone.ui_dump())]
    return {"protected": True, "elements": elements}
