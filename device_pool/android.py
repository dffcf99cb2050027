"""Facts of Android that the virtual phone imitates and the host relies on: how a display is laid out.

The virtual phone (``sim``) and the host side (driver, live view) must agree on these numbers
without either importing the other, so they live here, below both.
"""

from __future__ import annotations


def screenrecord_projection(display: tuple[int, int], video: tuple[int, int]) -> tuple[int, int, int, int]:
    """Where Android's ``screenrecord`` puts the display inside a ``video``-sized picture (its
    setDisplayProjection): aspect kept, centred, even numbers for 4:2:0 chroma → (width, height, x, y)."""
    dw, dh = display
    vw, vh = video
    aspect = dh / dw
    if vh > int(vw * aspect):
        ow, oh = vw, int(vw * aspect)
    else:
        ow, oh = int(vh / aspect), vh
    ow, oh = max(2, ow - ow % 2), max(2, oh - oh % 2)
    x, y = (vw - ow) // 2, (vh - oh) // 2
    return ow, oh, x - x % 2, y - y % 2


def scrcpy_video_size(display: tuple[int, int], max_size: int) -> tuple[int, int]:
    """The video scrcpy's server streams for a display: both sides cut to multiples of 8, the longer
    side capped at ``max_size`` (0: no cap) with the shorter one scaled and rounded to a multiple of 8."""
    w, h = display[0] & ~7, display[1] & ~7
    major, minor = max(w, h), min(w, h)
    if max_size and major > max_size:
        minor = (minor * max_size // major + 4) & ~7
        major = max_size & ~7
    return (minor, major) if h > w else (major, minor)


__all__ = ["scrcpy_video_size", "screenrecord_projection"]
