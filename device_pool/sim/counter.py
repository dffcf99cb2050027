"""The frame counter a virtual phone can draw on its screen, and how a viewer reads it back.

Latency benchmarks need to know, for a picture that arrives at a viewer, when the phone drew it.
With the counter on (``PhoneConfig.show_frame_counter`` or ``phonefleet-sim frame-counter on``) each
redraw stamps, across the bottom of the screen, three rows of 32 black/white blocks: the frame's
``seq``, the wall-clock time it was drawn (milliseconds, low 32 bits) and a check word. Blocks are
1/32 of the screen wide, so they survive downscaling and lossy video coding; a reader samples each
block's middle and trusts the result only when the check word matches. ``#seq`` is also printed
above the blocks for people. Off by default: the counter changes every frame's pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from device_pool.sim import render

__all__ = ["BITS", "Stamp", "draw", "now_ms", "read", "strip_height"]

BITS = 32
_ROWS = 3
_CHECK = 0x5A17C3E9  # XORed into the check word, so an all-black or all-white strip never reads as valid


@dataclass(frozen=True)
class Stamp:
    seq: int
    drawn_ms: int  # time.time() in ms, low 32 bits


def now_ms() -> int:
    return int(time.time() * 1000) & 0xFFFFFFFF


def _row_height(height: int) -> int:
    return max(6, height // 80)


def strip_height(height: int) -> int:
    """Pixels at the bottom of a ``height``-pixel screen the blocks cover."""
    return _ROWS * _row_height(height)


def _words(seq: int, drawn_ms: int) -> list[int]:
    seq &= 0xFFFFFFFF
    return [seq, drawn_ms, seq ^ drawn_ms ^ _CHECK]


def draw(image: Image.Image, seq: int, drawn_ms: int | None = None) -> None:
    """Stamp ``seq`` and the drawing time onto the bottom of ``image`` (in place)."""
    width, height = image.size
    stamp_ms = now_ms() if drawn_ms is None else drawn_ms
    rh = _row_height(height)
    top = height - _ROWS * rh
    canvas = ImageDraw.Draw(image)
    px = max(12, width // 30)
    label = f"#{seq}"
    box_w = int(render.text_width(label, px)) + px
    canvas.rectangle((0, top - px * 2, box_w, top - 1), fill=(0, 0, 0, 255))
    render.draw_line(canvas, px // 2, top - px, label, px, (255, 255, 0))
    for row, word in enumerate(_words(seq, stamp_ms)):
        y0 = top + row * rh
        for bit in range(BITS):
            x0 = bit * width // BITS
            x1 = (bit + 1) * width // BITS - 1
            on = (word >> (BITS - 1 - bit)) & 1
            canvas.rectangle((x0, y0, x1, y0 + rh - 1), fill=(255, 255, 255, 255) if on else (0, 0, 0, 255))


def read(luma: np.ndarray) -> Stamp | None:
    """The stamp in a picture's luma plane (H x W, uint8; any scale of the phone's screen), or None
    when there is none or it did not survive (the check word disagrees)."""
    height, width = luma.shape[:2]
    rh = _row_height(height)
    top = height - _ROWS * rh
    words = []
    for row in range(_ROWS):
        y = top + row * rh + rh // 2
        word = 0
        for bit in range(BITS):
            x0 = bit * width // BITS
            x1 = (bit + 1) * width // BITS
            xm = (x0 + x1) // 2
            dx = max(1, (x1 - x0) // 4)
            dy = max(1, rh // 4)
            patch = luma[y - dy : y + dy + 1, xm - dx : xm + dx + 1]
            word = (word << 1) | int(patch.mean() > 128)
        words.append(word)
    seq, drawn_ms, check = words
    if check != seq ^ drawn_ms ^ _CHECK:
        return None
    return Stamp(seq, drawn_ms)
