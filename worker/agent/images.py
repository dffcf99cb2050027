"""Screenshots encoded for the model: downscaled to a pixel budget, JPEG or PNG, as a data URL.

Actions use a relative 0–999 grid, so the model never needs the phone's true resolution and
downscaling is safe. Costs, as measured: JPEG via libjpeg-turbo is the only cheap encoder (PNG
costs 10–25x more CPU); ``reduce()`` by an integer factor is the cheap way down, and both run
2–3x faster on RGB than on RGBA.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import logging
import math
from dataclasses import dataclass
from typing import Literal

from PIL import Image

logger = logging.getLogger(__name__)

ImageFormat = Literal["jpeg", "png"]

# An integer reduce() that keeps at least this share of the pixel budget is good enough; below it
# a (slower) exact resize keeps the detail the budget allows.
_MIN_BUDGET_SHARE = 0.5


@dataclass(frozen=True)
class EncodedImage:
    """One encoded screenshot; ``digest`` (sha1 of the bytes, 12 hex) is what logs may show."""

    data_url: str
    width: int
    height: int
    bytes_len: int
    mime: str
    digest: str


def fit_to_budget(img: Image.Image, max_pixels: int) -> Image.Image:
    """Downscale ``img`` (keeping its aspect) to at most ``max_pixels``; cheap integer reduce when possible."""
    if max_pixels < 1:
        raise ValueError("max_pixels must be >= 1")
    w, h = img.size
    if w * h <= max_pixels:
        return img
    scale = math.sqrt(w * h / max_pixels)  # > 1
    factor = math.ceil(scale)
    if (w // factor) * (h // factor) >= _MIN_BUDGET_SHARE * max_pixels:
        return img.reduce(factor)
    # floor keeps the result within budget; reducing_gap makes Pillow box-reduce first (cheap)
    size = (max(1, math.floor(w / scale)), max(1, math.floor(h / scale)))
    while size[0] * size[1] > max_pixels:
        size = (max(1, size[0] - 1), max(1, size[1] - 1))
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def encode_screenshot(
    img: Image.Image, max_pixels: int = 1_000_000, fmt: ImageFormat = "jpeg", quality: int = 80
) -> EncodedImage:
    """Downscale to ``max_pixels`` and encode as JPEG (``quality`` 1–95) or PNG; alpha is dropped.

    CPU-bound (a few ms for a JPEG of a phone screen, far more for PNG): from async code call
    ``encode_screenshot_async``.
    """
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"unsupported image format {fmt!r} (use 'jpeg' or 'png')")
    # Screens are opaque: drop alpha once, before scaling, where it would triple the cost.
    if img.mode not in ("RGB", "RGBX", "L"):
        img = img.convert("RGB")
    img = fit_to_budget(img, max_pixels)
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, "JPEG", quality=quality)
        mime = "image/jpeg"
    else:
        if img.mode == "RGBX":  # PNG has no RGBX; convert the already-small image
            img = img.convert("RGB")
        img.save(buf, "PNG", compress_level=1)  # level 1: most of the size win for far less CPU
        mime = "image/png"
    data = buf.getvalue()
    encoded = EncodedImage(
        data_url=f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}",
        width=img.width,
        height=img.height,
        bytes_len=len(data),
        mime=mime,
        digest=hashlib.sha1(data).hexdigest()[:12],
    )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("screenshot encoded", extra={"width": encoded.width, "height": encoded.height,
                                                  "bytes": encoded.bytes_len, "digest": encoded.digest})  # fmt: skip
    return encoded


async def encode_screenshot_async(
    img: Image.Image, max_pixels: int = 1_000_000, fmt: ImageFormat = "jpeg", quality: int = 80
) -> EncodedImage:
    """``encode_screenshot`` off the event loop (in a worker thread)."""
    return await asyncio.to_thread(encode_screenshot, img, max_pixels, fmt, quality)


def image_part(encoded: EncodedImage) -> dict:
    """The OpenAI chat content part that carries ``encoded``."""
    return {"type": "image_url", "image_url": {"url": encoded.data_url}}


__all__ = [
    "EncodedImage",
    "ImageFormat",
    "encode_screenshot",
    "encode_screenshot_async",
    "fit_to_budget",
    "image_part",
]
