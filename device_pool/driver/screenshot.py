"""Screen frames from ``screencap``: raw buffers and PNGs to PIL images, settle comparison, black frames.

``screencap`` (no ``-p``) writes a header of little-endian u32s ``width, height, format`` plus, since
Android 8, ``colorspace`` (16 bytes; 12 before), then the pixels. Comparing two raw buffers with
``bytes ==`` is a memcmp (≤ 1.4 ms at 1080x2400), the cheapest settle check.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from device_pool.driver.errors import ProtocolViolation, StreamClosed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The IEND chunk: zero length, type, fixed CRC. A PNG that lacks it was cut off.
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# Android PixelFormat → (PIL mode, PIL raw mode, bytes per pixel).
_PIXEL_FORMATS: dict[int, tuple[str, str, int]] = {
    1: ("RGBA", "RGBA", 4),  # RGBA_8888
    2: ("RGB", "RGBX", 4),  # RGBX_8888
    3: ("RGB", "RGB", 3),  # RGB_888
    4: ("RGB", "BGR;16", 2),  # RGB_565, little-endian, red in the high bits
    5: ("RGBA", "BGRA", 4),  # BGRA_8888
}


@dataclass(frozen=True)
class RawFrame:
    """One raw ``screencap`` reply; ``buffer`` holds the header too, so equal buffers mean equal frames."""

    width: int
    height: int
    pixel_format: int
    buffer: bytes
    offset: int

    def image(self) -> Image.Image:
        """A PIL image over the buffer (zero copy for RGBA_8888)."""
        mode, raw_mode, _ = _PIXEL_FORMATS[self.pixel_format]
        pixels = memoryview(self.buffer)[self.offset :]
        if raw_mode == mode:
            return Image.frombuffer(mode, (self.width, self.height), pixels, "raw", raw_mode, 0, 1)
        return Image.frombytes(mode, (self.width, self.height), bytes(pixels), "raw", raw_mode)

    def same_pixels(self, other: RawFrame | None) -> bool:
        return other is not None and self.buffer == other.buffer


def parse_raw(buffer: bytes) -> RawFrame:
    """Parse a raw screencap; StreamClosed when it is shorter than its header promises."""
    if not buffer:
        raise StreamClosed("screencap ended before sending anything", buffer)
    if len(buffer) < 12:
        raise StreamClosed("screencap ended inside its header", buffer)
    width, height, pixel_format = struct.unpack_from("<III", buffer)
    if pixel_format not in _PIXEL_FORMATS:
        # Not a frame at all: most likely an error message printed by screencap.
        raise ProtocolViolation(f"screencap returned unknown pixel format {pixel_format}: {buffer[:80]!r}")
    size = width * height * _PIXEL_FORMATS[pixel_format][2]
    for header in (16, 12):
        if len(buffer) == header + size:
            return RawFrame(width, height, pixel_format, buffer, header)
    if len(buffer) < 16 + size:
        raise StreamClosed(f"screencap ended after {len(buffer)} of {16 + size} bytes", buffer[:80])
    raise ProtocolViolation(f"screencap of {len(buffer)} bytes for a {width}x{height} frame")


def check_png(data: bytes) -> None:
    """StreamClosed when a PNG was cut off; ProtocolViolation when it is no PNG at all."""
    if not data:
        raise StreamClosed("screencap -p ended before sending anything", data)
    if not data.startswith(PNG_SIGNATURE):
        if PNG_SIGNATURE.startswith(data):
            raise StreamClosed("screencap ended inside the PNG signature", data)
        raise ProtocolViolation(f"screencap -p returned no PNG: {data[:80]!r}")
    if not data.endswith(_PNG_END):
        raise StreamClosed(f"PNG cut off after {len(data)} bytes", b"")


def decode_png(data: bytes) -> Image.Image:
    """Decode a PNG fully (CPU-heavy: run it off the event loop)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _sample_rgb(image: Image.Image, step: int) -> np.ndarray:
    if image.mode not in ("RGB", "RGBA", "RGBX"):
        image = image.convert("RGB")
    return np.asarray(image)[::step, ::step, :3]


def black_fraction(image: Image.Image, threshold: int = 8, step: int = 4) -> float:
    """Share of pixels (every ``step``-th row and column) whose R, G and B are all ≤ ``threshold``."""
    sample = _sample_rgb(image, step)
    if sample.size == 0:
        return 1.0
    return float((sample.max(axis=2) <= threshold).mean())


def is_black_frame(image: Image.Image, threshold: int = 8) -> bool:
    """True when the whole frame is (nearly) black: screen off, a frame not yet drawn, or a secure window."""
    return black_fraction(image, threshold) >= 0.999


def is_secure_frame(image: Image.Image) -> bool:
    """True when the app area is pure black, as Android captures a FLAG_SECURE window.

    Android blanks only the secure layer to (0, 0, 0), so the status and navigation bars may still
    show: the check looks at the middle 80% of the rows. A black screen matches too; a dark theme
    does not, because its text and icons are not pure black. Use ``is_black_frame`` to tell a fully
    black frame apart.
    """
    sample = _sample_rgb(image, 4)
    rows = sample.shape[0]
    band = sample[rows // 10 : rows - rows // 10]
    return band.size > 0 and int(band.max()) == 0
