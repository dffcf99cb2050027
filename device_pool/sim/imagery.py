"""Photo-like pictures for the virtual phone: the launcher wallpaper and the shop's product photos.

Real screens carry photographs (a wallpaper, product shots), and those dominate a screenshot's
PNG size and a video encoder's work; flat-colour UI alone would make image-size and encoding
benchmarks look far cheaper than on a real phone. These pictures are smooth multi-octave value
noise mapped through a seeded palette, with fine texture and grain, so their PNGs do not compress
to nothing.

Every picture is a pure function of its arguments (numpy's PCG64 seeded from them; no global
random state, no ``hash()``), so the same seed gives byte-identical frames. Generation is
vectorised (a wallpaper at 1080x2400 takes ~100-200 ms) and happens once: the results are kept in
module-level LRU caches, which is safe because a cached value depends on nothing but its key.
The renderer only pastes the cached images, so drawing a frame stays cheap.
"""

from __future__ import annotations

import colorsys
import functools
import zlib

import numpy as np
from PIL import Image, ImageDraw

# Phones in a fleet get consecutive seeds; a wallpaper is ~7.8 MB at 1080x2400, so seeds share a
# bounded set of variants (a real fleet mostly shows one stock wallpaper anyway).
WALLPAPER_VARIANTS = 16


def _rng(*key: int | str) -> np.random.Generator:
    """A generator seeded from the key; strings via CRC-32 (``hash()`` is salted per process)."""
    words = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) & 0xFFFFFFFF for k in key]
    return np.random.default_rng(words)


def _noise(rng: np.random.Generator, w: int, h: int, cells: float) -> np.ndarray:
    """Smooth value noise in about [0, 1]: a random grid with ``cells`` cells across the short side,
    bicubically upsampled to w x h (float32)."""
    short = min(w, h)
    cx, cy = max(1, round(cells * w / short)), max(1, round(cells * h / short))
    grid = rng.random((cy + 3, cx + 3), dtype=np.float32)
    image = Image.fromarray(grid)  # one margin cell each side keeps the edges smooth
    return np.asarray(image.resize((w, h), Image.Resampling.BICUBIC, box=(1, 1, cx + 1, cy + 1)))


def _fbm(
    rng: np.random.Generator, w: int, h: int, cells: float, octaves: int, gain: float = 0.5
) -> np.ndarray:
    """Fractal (multi-octave) value noise normalised to [0, 1]."""
    total = np.zeros((h, w), np.float32)
    amp = 1.0
    for i in range(octaves):
        total += amp * _noise(rng, w, h, cells * 2**i)
        amp *= gain
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return r * 255, g * 255, b * 255


def wallpaper(width: int, height: int, seed: int) -> Image.Image:
    """The launcher wallpaper for a phone of this size and seed (RGB, shared: do not modify)."""
    return _wallpaper(width, height, seed % WALLPAPER_VARIANTS)


# A pure function of (width, height, variant): caching it module-wide is safe. At most a few
# phone sizes x WALLPAPER_VARIANTS entries exist in practice.
@functools.lru_cache(maxsize=24)
def _wallpaper(width: int, height: int, variant: int) -> Image.Image:
    rng = _rng("wallpaper", variant)
    # The colour field is built at quarter resolution (it is smooth) and upsampled once.
    qw, qh = max(2, width // 4), max(2, height // 4)
    hue = float(rng.random())
    palette = np.array(
        [
            _hsv(hue + rng.uniform(-0.12, 0.12), rng.uniform(0.35, 0.75), rng.uniform(0.22, 0.72))
            for _ in range(5)
        ],
        np.float32,
    )
    stops = np.linspace(0.0, 1.0, len(palette))
    warp = _fbm(rng, qw, qh, 1.5, 3)
    t = _fbm(rng, qw, qh, 1.2, 5, 0.55) * 0.75 + warp * 0.25
    t = np.clip((t - 0.5) * 1.6 + 0.5, 0.0, 1.0)  # more contrast between the palette's regions
    rgb = np.stack([np.interp(t, stops, palette[:, c]).astype(np.float32) for c in range(3)], axis=-1)
    light = 0.8 + 0.4 * _fbm(rng, qw, qh, 2.5, 4)  # soft clouds of light and shade
    ys = np.linspace(0.0, 1.0, qh, dtype=np.float32)[:, None]
    tilt = float(rng.uniform(-0.25, 0.25))
    gradient = 1.0 + tilt * (0.5 - ys)  # a gentle top-to-bottom gradient
    # Launcher scrims: darker under the status bar and near the bottom, as launcher3 draws them.
    scrim = 1.0 - 0.35 * np.clip(1.0 - ys / 0.06, 0.0, 1.0) - 0.25 * np.clip((ys - 0.85) / 0.15, 0.0, 1.0)
    rgb *= (light * gradient * scrim)[..., None]
    small = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    base = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC)).astype(np.int16)
    # Full-resolution detail: fine texture (foliage, sand, clouds) and sensor grain, as luminance.
    detail = (_noise(rng, width, height, min(width, height) / 10) - 0.5) * 10.0
    detail += (_noise(rng, width, height, min(width, height) / 40) - 0.5) * 12.0
    # Grain: a faint 4-px texture rather than white noise, which no PNG could compress at all.
    detail += (_noise(rng, width, height, min(width, height) / 4) - 0.5) * 3.0
    delta = detail.astype(np.int16)
    out = np.clip(base + delta[..., None], 0, 255).astype(np.uint8)
    return Image.fromarray(out)


def photo(width: int, height: int, key: str) -> tuple[Image.Image, Image.Image]:
    """A product photo for ``key`` (a product id) at this size: (RGB image, rounded-corner mask)."""
    return _photo(max(1, width), max(1, height), key)


# A pure function of its key (size and product id), so a module-wide cache is safe.
@functools.lru_cache(maxsize=128)
def _photo(width: int, height: int, key: str) -> tuple[Image.Image, Image.Image]:
    rng = _rng("photo", key)
    s = min(width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # Studio backdrop: a pale two-tone gradient with soft, uneven light.
    hue = float(rng.random())
    top = np.array(_hsv(hue, rng.uniform(0.08, 0.25), rng.uniform(0.88, 0.98)), np.float32)
    bottom = np.array(
        _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.1, 0.3), rng.uniform(0.7, 0.85)), np.float32
    )
    angle = float(rng.uniform(0, np.pi))
    g = (xs * np.cos(angle) + ys * np.sin(angle)) / max(
        1.0, width * abs(np.cos(angle)) + height * np.sin(angle)
    )
    g = np.clip(g - float(g.min()), 0.0, 1.0)[..., None]
    bg = top * (1 - g) + bottom * g
    bg *= (0.9 + 0.15 * _fbm(rng, width, height, 2.0, 3))[..., None]
    # The object: a blob with a wobbly outline, shaded as a lit curved surface, with texture.
    cx = width / 2 + float(rng.uniform(-0.08, 0.08)) * s
    cy = height / 2 + float(rng.uniform(-0.05, 0.05)) * s
    radius = s * float(rng.uniform(0.26, 0.34))
    aspect = float(rng.uniform(0.7, 1.4))
    dx, dy = (xs - cx) / aspect, ys - cy
    theta = np.arctan2(dy, dx)
    wobble = np.zeros_like(theta)
    for k in (2, 3, 5):
        wobble += float(rng.uniform(0.0, 0.12 / k * 2)) * np.cos(k * theta + float(rng.uniform(0, 2 * np.pi)))
    edge = radius * (1.0 + wobble)
    dist = np.hypot(dx, dy)
    inside = np.clip((edge - dist) / 1.5 + 0.5, 0.0, 1.0)[..., None]  # anti-aliased outline
    shadow = np.exp(
        -(
            ((xs - cx - 0.08 * s) / (radius * aspect * 1.1)) ** 2
            + ((ys - cy - 0.9 * radius) / (0.25 * radius)) ** 2
        )
    )
    bg *= (1.0 - 0.35 * shadow)[..., None]
    colour = np.array(_hsv(float(rng.random()), rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.9)), np.float32)
    r = np.clip(dist / np.maximum(edge, 1.0), 0.0, 1.0)
    lx, ly = -0.5, -0.6  # light from the upper left
    nz = np.sqrt(np.clip(1.0 - r**2, 0.0, 1.0))
    shade = 0.35 + 0.65 * np.clip(
        (dx / np.maximum(edge, 1.0)) * lx + (dy / np.maximum(edge, 1.0)) * ly + nz * 0.6, 0.0, 1.0
    )
    texture = 0.85 + 0.3 * _fbm(rng, width, height, max(4.0, s / 24), 3)
    obj = colour * (shade * texture)[..., None]
    spot = np.exp(-(((dx + 0.35 * radius) ** 2 + (dy + 0.4 * radius) ** 2) / (0.05 * radius**2 + 1.0)))
    obj += (spot * 140.0)[..., None]
    rgb = bg * (1.0 - inside) + obj * inside
    rgb += rng.integers(-2, 3, size=(height, width, 1)).astype(np.float32)  # grain
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, width - 1, height - 1), radius=s // 8, fill=255)
    return image, mask


__all__ = ["WALLPAPER_VARIANTS", "photo", "wallpaper"]
