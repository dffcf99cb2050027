"""Pixels from the view tree: every pixel drawn comes from a node's text or drawing attributes.

Pictures (the wallpaper, product photos) are ImageView nodes whose ``icon`` names a cached image in
``imagery``; drawing one is a paste, so no frame pays for generating them.
"""

from __future__ import annotations

import functools
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from device_pool.sim import imagery
from device_pool.sim.views import EDIT, Color, View, Window

ASSETS = Path(__file__).parent / "assets"
CJK_FONT = ASSETS / "DroidSansFallbackFull.ttf"
LATIN_FONT = ASSETS / "DejaVuSans.ttf"
LATIN_BOLD_FONT = ASSETS / "DejaVuSans-Bold.ttf"
ACCENT: Color = (26, 115, 232)
MUTED: Color = (120, 120, 120)
TEXT_SHADOW = (0, 0, 0, 96)
ELLIPSIS = "…"


@functools.lru_cache(maxsize=128)
def font(px: int, cjk: bool = False, bold: bool = False) -> ImageFont.FreeTypeFont:
    """Droid Sans Fallback has no Latin glyphs, so text is drawn in runs: CJK vs everything else."""
    path = CJK_FONT if cjk else LATIN_BOLD_FONT if bold else LATIN_FONT
    return ImageFont.truetype(str(path), max(6, px))


def _is_cjk(ch: str) -> bool:
    return ord(ch) >= 0x2E80 and not 0xFE00 <= ord(ch) <= 0xFE0F


def _runs(text: str) -> list[tuple[bool, str]]:
    runs: list[tuple[bool, str]] = []
    for ch in text:
        cjk = _is_cjk(ch)
        if runs and runs[-1][0] == cjk:
            runs[-1] = (cjk, runs[-1][1] + ch)
        else:
            runs.append((cjk, ch))
    return runs


def text_width(text: str, px: int, bold: bool = False) -> float:
    return sum(font(px, cjk, bold).getlength(run) for cjk, run in _runs(text))


def line_height(px: int) -> int:
    return int(px * 1.35)


def draw_line(draw: ImageDraw.ImageDraw, x: float, cy: float, text: str, px: int, fill: Color | tuple[int, ...],
              align: str = "left", bold: bool = False, stroke: int = 0) -> None:  # fmt: skip
    """One line of mixed Latin/CJK text, vertically centred on ``cy``; ``x`` is the left, centre or right.

    ``stroke`` widens every glyph by that many px (text shadows use it)."""
    width = text_width(text, px, bold)
    if align == "center":
        x -= width / 2
    elif align == "right":
        x -= width
    ascent, descent = font(px, False, bold).getmetrics()
    baseline = cy + (ascent - descent) / 2
    for cjk, run in _runs(text):
        f = font(px, cjk, bold)
        width = max(stroke, max(1, px // 30) if bold and cjk else 0)
        draw.text((x, baseline), run, font=f, fill=fill, anchor="ls", stroke_width=width, stroke_fill=fill)
        x += f.getlength(run)


def wrap_lines(text: str, px: int, width: int) -> list[str]:
    """Greedy wrap by words, breaking long words (and CJK runs) by character; keeps newlines."""
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in _tokens(para):
            candidate = line + word
            if text_width(candidate, px) <= width:
                line = candidate
                continue
            if line:
                lines.append(line.rstrip())
                line = word.lstrip()
                if text_width(line, px) <= width:
                    continue
                word, line = line, ""
            for ch in word:  # a single token wider than the line: split it by character
                if line and text_width(line + ch, px) > width:
                    lines.append(line)
                    line = ""
                line += ch
        lines.append(line.rstrip())
    return lines


def _tokens(para: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for ch in para:
        if ch == " ":
            current += ch
            tokens.append(current)
            current = ""
        elif ord(ch) > 0x2E80:  # CJK: every character may start a line
            if current:
                tokens.append(current)
            tokens.append(ch)
            current = ""
        else:
            current += ch
    if current:
        tokens.append(current)
    return tokens


def ellipsize(text: str, px: int, width: int, bold: bool = False) -> str:
    if text_width(text, px, bold) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid] + ELLIPSIS, px, bold) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + ELLIPSIS


def render(windows: list[Window], width: int, height: int) -> Image.Image:
    """Draw the windows bottom to top; the result is RGBA with every pixel opaque."""
    # An RGB canvas with an "RGBA" draw blends translucent fills (dialog scrims); on an RGBA
    # canvas Pillow would store the alpha instead, and screencaps must be opaque.
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image, "RGBA")
    for window in windows:
        _draw_view(image, draw, window.root)
    return image.convert("RGBA")


def _draw_view(image: Image.Image, draw: ImageDraw.ImageDraw, view: View) -> None:
    left, top, right, bottom = view.bounds
    if right <= left or bottom <= top:
        return
    box = (left, top, right - 1, bottom - 1)
    if view.bg is not None or view.border is not None:
        fill = view.bg if view.bg is None or len(view.bg) == 4 else (*view.bg, 255)
        outline = view.border
        width = max(1, (bottom - top) // 40) if outline else 0
        if view.radius:
            draw.rounded_rectangle(box, radius=view.radius, fill=fill, outline=outline, width=width)
        else:
            draw.rectangle(box, fill=fill, outline=outline, width=width)
    if view.icon:
        _draw_icon(image, draw, view)
    elif view.cls == EDIT:
        _draw_edit(draw, view)
    elif view.text or view.hint:
        _draw_text(draw, view, view.bounds, view.fg)
    for child in view.children:
        _draw_view(image, draw, child)


def _draw_text(draw: ImageDraw.ImageDraw, view: View, bounds: tuple[int, int, int, int], fg: Color,
               shadow: bool = False) -> None:  # fmt: skip
    text = view.shown_text
    if not text:
        return
    left, top, right, bottom = bounds
    px = view.size or max(10, (bottom - top) // 2)
    inner_l, inner_r = left + view.pad, right - view.pad
    avail = max(1, inner_r - inner_l)
    if view.wrap:
        y = top + view.pad
        lh = line_height(px)
        for line in wrap_lines(text, px, avail):
            if y + lh > bottom + lh // 4:
                break
            draw_line(draw, inner_l, y + lh // 2, line, px, fg, bold=view.bold)
            y += lh
        return
    line = ellipsize(text.replace("\n", " "), px, avail, view.bold)
    cy = (top + bottom) // 2
    x = {"center": (left + right) // 2, "right": inner_r}.get(view.align, inner_l)
    if shadow:  # a soft dark halo, offset down, keeps light text legible on a photo
        off = max(1, px // 16)
        draw_line(draw, x, cy + off, line, px, TEXT_SHADOW, view.align, view.bold, stroke=max(1, px // 9))
        draw_line(draw, x, cy + off, line, px, TEXT_SHADOW, view.align, view.bold)
    draw_line(draw, x, cy, line, px, fg, view.align, view.bold)


def _draw_edit(draw: ImageDraw.ImageDraw, view: View) -> None:
    left, _top, right, bottom = view.bounds
    line_w = max(2, (view.size or 40) // 16)
    color = ACCENT if view.focused else (170, 170, 170)
    if view.focused:
        line_w *= 2
    if view.border is None:
        draw.rectangle(
            (left + view.pad // 2, bottom - line_w - 2, right - view.pad // 2, bottom - 3), fill=color
        )
    fg = view.fg if view.text else MUTED
    _draw_text(draw, view, view.bounds, fg)


def _draw_icon(image: Image.Image, draw: ImageDraw.ImageDraw, view: View) -> None:
    left, top, right, bottom = view.bounds
    w, h = right - left, bottom - top
    cx, cy = (left + right) // 2, (top + bottom) // 2
    color = view.icon_color or view.fg
    kind, _, arg = view.icon.partition(":")
    if kind == "wallpaper":  # "wallpaper:SEED": the launcher's photo-like wallpaper, cached per size+seed
        image.paste(imagery.wallpaper(w, h, int(arg or 0)), (left, top))
        return
    if kind == "photo":  # "photo:KEY": a product photo with rounded corners, cached per size+key
        picture, mask = imagery.photo(w, h, arg)
        image.paste(picture, (left, top), mask)
        return
    if kind == "app":
        # Launcher cell: a rounded tile with the app's initial, and the label (the node's text) below.
        side = int(min(w * 0.62, h * 0.58))
        tl = (cx - side // 2, top + h // 12)
        draw.rounded_rectangle((tl[0], tl[1], tl[0] + side, tl[1] + side), radius=side // 4, fill=color)
        draw_line(draw, cx, tl[1] + side // 2, arg, int(side * 0.5), (255, 255, 255), "center", True)
        label_top = tl[1] + side + h // 30
        label = (left, label_top, right, min(bottom, label_top + view.size * 2))
        _draw_text(draw, view, label, view.fg, shadow=True)  # labels sit on the wallpaper
        return
    if kind == "avatar":
        r = min(w, h) // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
        draw_line(draw, cx, cy, arg, r, (255, 255, 255), "center", True)
        return
    if kind == "switch":
        tw, th = int(min(w, h * 1.9)), int(min(h, w / 1.9) * 0.6)
        track = (cx - tw // 2, cy - th // 2, cx + tw // 2, cy + th // 2)
        on = view.checked
        draw.rounded_rectangle(track, radius=th // 2, fill=ACCENT if on else (190, 190, 190))
        r = int(th * 0.42)
        tx = track[2] - th // 2 if on else track[0] + th // 2
        draw.ellipse((tx - r, cy - r, tx + r, cy + r), fill=(255, 255, 255))
        return
    s = min(w, h)
    lw = max(2, s // 10)
    if kind == "back":
        draw.line((cx - s // 3, cy, cx + s // 3, cy), fill=color, width=lw)
        draw.line((cx - s // 3, cy, cx - s // 20, cy - s // 4), fill=color, width=lw)
        draw.line((cx - s // 3, cy, cx - s // 20, cy + s // 4), fill=color, width=lw)
    elif kind == "plus":
        draw.line((cx - s // 5, cy, cx + s // 5, cy), fill=color, width=lw)
        draw.line((cx, cy - s // 5, cx, cy + s // 5), fill=color, width=lw)
    elif kind == "search":
        r = s // 5
        draw.ellipse(
            (cx - r - s // 12, cy - r - s // 12, cx + r - s // 12, cy + r - s // 12), outline=color, width=lw
        )
        draw.line((cx + r // 2, cy + r // 2, cx + s // 4, cy + s // 4), fill=color, width=lw)
    elif kind == "wifi":
        for i in range(3):
            r = s * (i + 1) // 7
            draw.arc(
                (cx - r, cy + s // 4 - r, cx + r, cy + s // 4 + r),
                225,
                315,
                fill=color,
                width=max(2, lw // 2),
            )
        draw.ellipse((cx - lw, cy + s // 4 - lw, cx + lw, cy + s // 4 + lw), fill=color)
    elif kind == "bluetooth":
        t, b, x0, x1 = cy - s // 3, cy + s // 3, cx - s // 6, cx + s // 6
        lw2 = max(2, lw // 2)
        draw.line((cx, t, cx, b), fill=color, width=lw2)
        draw.line((x0, cy - s // 6, x1, cy + s // 6, cx, b), fill=color, width=lw2)
        draw.line((x0, cy + s // 6, x1, cy - s // 6, cx, t), fill=color, width=lw2)
    elif kind == "airplane":
        draw.line((cx, cy - s // 3, cx, cy + s // 3), fill=color, width=lw)
        draw.polygon(
            [(cx, cy - s // 8), (cx - s // 3, cy + s // 10), (cx + s // 3, cy + s // 10)], fill=color
        )
        draw.line((cx - s // 7, cy + s // 3, cx + s // 7, cy + s // 3), fill=color, width=lw)
    elif kind == "battery":
        bw, bh = s // 3, int(s * 0.6)
        draw.rectangle((cx - bw // 2, cy - bh // 2, cx + bw // 2, cy + bh // 2), fill=color)
        draw.rectangle((cx - bw // 5, cy - bh // 2 - s // 14, cx + bw // 5, cy - bh // 2), fill=color)
    elif kind == "signal":
        for i in range(4):
            bx = cx - s // 3 + i * s // 5
            draw.rectangle((bx, cy + s // 3 - (i + 1) * s // 6, bx + s // 8, cy + s // 3), fill=color)
    elif kind == "close":
        d = s // 5
        draw.line((cx - d, cy - d, cx + d, cy + d), fill=color, width=lw)
        draw.line((cx - d, cy + d, cx + d, cy - d), fill=color, width=lw)
    elif kind == "dot":
        r = s // 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    if view.text and kind not in ("app", "avatar", "switch"):
        _draw_text(draw, view, view.bounds, view.fg)
