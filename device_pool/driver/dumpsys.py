"""Parsers for the text that ``wm size`` and ``dumpsys`` print on Android 8–14."""

from __future__ import annotations

import re

_WM_SIZE = re.compile(r"(Physical|Override) size:\s*(\d+)\s*x\s*(\d+)")
# mCurrentFocus=Window{5f3a1c u0 com.android.settings/com.android.settings.Settings}
_FOCUS = re.compile(r"mCurrentFocus=Window\{[^}]*?\s([A-Za-z][\w.]*)/([\w.$]+)\}")
# mResumedActivity: ActivityRecord{9b2 u0 com.android.settings/.Settings t12} (topResumedActivity= on 10+)
_RESUMED = re.compile(
    r"(?:mResumedActivity|topResumedActivity|ResumedActivity)[:=]\s*"
    r"ActivityRecord\{[^}]*?\s([A-Za-z][\w.]*)/([\w.$]+)"
)


def parse_wm_size(text: str) -> tuple[int, int] | None:
    """(width, height) from ``wm size``; the override size wins over the physical one."""
    sizes = {kind: (int(w), int(h)) for kind, w, h in _WM_SIZE.findall(text)}
    return sizes.get("Override") or sizes.get("Physical")


def _component(match: re.Match[str] | None) -> tuple[str, str] | None:
    if match is None:
        return None
    package, activity = match.group(1), match.group(2)
    # Android abbreviates activities inside their own package as ".Name".
    return package, package + activity if activity.startswith(".") else activity


def parse_focused_window(text: str) -> tuple[str, str] | None:
    """(package, activity) of ``mCurrentFocus`` in ``dumpsys window``; None for a non-app window."""
    return _component(_FOCUS.search(text))


def parse_resumed_activity(text: str) -> tuple[str, str] | None:
    """(package, activity) of the resumed activity in ``dumpsys activity activities``."""
    return _component(_RESUMED.search(text))
