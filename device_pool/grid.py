"""The model's grid mapped onto a screen: 0..GRID_SIZE-1 on both axes, whatever the resolution.

It lives at the bottom layer, beside ``logs.py`` and ``errors.py``, because three rooms need the one
conversion: the agent's executor (``worker/agent/executor.py``) taps where the model pointed, and
the trajectory files (the API's zip, ``phonefleet run``'s folder) write each action in pixels too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GRID_SIZE", "POINT_FIELDS", "action_pixels", "to_pixels"]

GRID_SIZE = 1000
"""The model's grid: coordinates are integers 0..GRID_SIZE-1 on both axes, whatever the screen size."""

POINT_FIELDS = ("element", "start", "end")
"""The fields of an action (its JSON) that hold a grid point."""


def to_pixels(point: tuple[int, int] | list[int], size: tuple[int, int]) -> tuple[int, int]:
    """A grid point as a pixel of a screen ``size`` (width, height) pixels large."""
    width, height = size
    x = min(width - 1, max(0, round(point[0] / GRID_SIZE * width)))
    y = min(height - 1, max(0, round(point[1] / GRID_SIZE * height)))
    return x, y


def action_pixels(action: dict[str, Any] | None, size: tuple[int, int] | None) -> dict[str, Any] | None:
    """An action's JSON with its grid points as pixels of a ``size`` screen; None without both."""
    if action is None or size is None:
        return None
    return {
        key: list(to_pixels(value, size))
        if key in POINT_FIELDS and isinstance(value, list | tuple)
        else value
        for key, value in action.items()
    }
