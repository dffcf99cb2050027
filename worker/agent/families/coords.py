"""Coordinate conventions, converted in one place: a family's numbers ↔ the loop's grid.

The loop's actions hold points on the grid (``actions.GRID_SIZE``: 0..999 on both axes over the
screenshot, whatever its size); the executor turns them into the phone's pixels. A family writes
points in its own convention, and only this module converts:

- ``grid``: the same 0..999 grid (AutoGLM; UI-TARS v1's relative 0..1000 reads the same way).
- ``pixels``: absolute pixels of the image the model was sent (UI-TARS-1.5, Qwen2.5-VL
  ``mobile_use``), which the client resized itself with ``smart_resize`` so that the server's own
  resize leaves it as it is.
- ``ratio``: fractions 0..1 of the image.
"""

from __future__ import annotations

import math
from typing import Literal

from worker.agent.actions import GRID_SIZE

__all__ = ["Convention", "ImageSize", "from_grid", "smart_resize", "to_grid"]

Convention = Literal["grid", "pixels", "ratio"]
ImageSize = tuple[int, int]
"""The width and height of the image the model was sent."""

# Qwen2-VL / Qwen2.5-VL images are cut in 14-pixel patches merged 2×2: sides are multiples of 28.
RESIZE_FACTOR = 28
MIN_PIXELS = 4 * RESIZE_FACTOR * RESIZE_FACTOR  # Qwen2.5-VL's processor (56×56); UI-TARS uses 100 patches


def _one(value: float, extent: int, convention: Convention) -> int:
    if not math.isfinite(value):
        raise ValueError("a coordinate is not a finite number")
    if convention == "grid":
        grid = value
    elif convention == "pixels":
        grid = value / max(1, extent) * GRID_SIZE
    else:
        grid = value * GRID_SIZE
    return min(GRID_SIZE - 1, max(0, int(grid)))


def to_grid(x: float, y: float, convention: Convention, size: ImageSize) -> tuple[int, int]:
    """A point the model wrote, on the loop's grid (clamped onto the screen)."""
    return _one(x, size[0], convention), _one(y, size[1], convention)


def from_grid(
    point: tuple[int, int], convention: Convention, size: ImageSize
) -> tuple[float, float] | tuple[int, int]:
    """A grid point as the family writes it (the centre of the grid cell, for pixels and ratios)."""
    x, y = point
    if convention == "grid":
        return x, y
    if convention == "pixels":
        return round((x + 0.5) * size[0] / GRID_SIZE), round((y + 0.5) * size[1] / GRID_SIZE)
    return round((x + 0.5) / GRID_SIZE, 4), round((y + 0.5) / GRID_SIZE, 4)


def smart_resize(
    width: int, height: int, max_pixels: int, *, factor: int = RESIZE_FACTOR, min_pixels: int = MIN_PIXELS
) -> ImageSize:
    """The size a Qwen-VL processor resizes an image to: both sides multiples of ``factor``, the
    area between ``min_pixels`` and ``max_pixels``, the aspect ratio kept as nearly as that allows."""
    w = max(factor, round(width / factor) * factor)
    h = max(factor, round(height / factor) * factor)
    if w * h > max_pixels:
        beta = math.sqrt(width * height / max_pixels)
        w = max(factor, math.floor(width / beta / factor) * factor)
        h = max(factor, math.floor(height / beta / factor) * factor)
    elif w * h < min_pixels:
        beta = math.sqrt(min_pixels / (width * height))
        w = math.ceil(width * beta / factor) * factor
        h = math.ceil(height * beta / factor) * factor
    return w, h
