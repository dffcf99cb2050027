"""What the reference model sees of one screenshot: its OCR lines, and a few facts read from pixels.

Texts are matched after ``normalise`` (case-folded, spaces dropped), because OCR often runs words
together ("Airplanemode"). Pixel rules are deliberately simple and stated in each function: they
describe the flat Material-like look of the virtual phone and of stock Android.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from worker.agent.actions import GRID_SIZE
from worker.agent.ocr import TextBox, normalise

Phrase = str | re.Pattern[str]
"""A text to look for: a plain string (matched normalised) or a regex searched in normalised text."""

CLOSE_GLYPHS = frozenset({"×", "x", "✕", "✖", "╳", "⨯", "关闭", "close"})
_STATUS_BAR_SHARE = 0.045  # the status bar's share of the height: its clock and icons are not content


def _matches(box: TextBox, phrase: Phrase, exact: bool) -> bool:
    if isinstance(phrase, re.Pattern):
        return phrase.search(box.norm) is not None
    wanted = normalise(phrase)
    return box.norm == wanted if exact else wanted in box.norm


@dataclass
class Screen:
    """One screenshot (RGB array), its text lines, and the foreground app the agent reported."""

    image: np.ndarray
    boxes: list[TextBox]
    current_app: str | None = None
    # A protected (secure) screen's elements as the agent listed them from the view tree: label, grid point.
    protected: tuple[tuple[str, tuple[int, int]], ...] = ()

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def content(self) -> list[TextBox]:
        """Text below the status bar."""
        limit = self.height * _STATUS_BAR_SHARE
        return [b for b in self.boxes if b.y0 > limit]

    # ---- text
    def find(self, *phrases: Phrase) -> TextBox | None:
        """The best line for any phrase: an exact match first, then the shortest line containing it."""
        for phrase in phrases:
            exact = [b for b in self.content if _matches(b, phrase, exact=True)]
            if exact:
                return exact[0]
        partial = [b for p in phrases for b in self.content if _matches(b, p, exact=False)]
        return min(partial, key=lambda b: len(b.norm)) if partial else None

    def find_all(self, *phrases: Phrase) -> list[TextBox]:
        """Every content line matching a phrase: exact matches first, then lines containing one."""
        exact = [b for b in self.content if any(_matches(b, p, exact=True) for p in phrases)]
        partial = [b for b in self.content if b not in exact and any(_matches(b, p, False) for p in phrases)]
        return exact + partial

    def has(self, *phrases: Phrase) -> bool:
        """Whether any line contains any of the phrases."""
        return self.find(*phrases) is not None

    def has_exact(self, *phrases: Phrase) -> bool:
        return any(_matches(b, p, exact=True) for p in phrases for b in self.content)

    def fingerprint(self) -> str:
        """Six hex digits naming what the screen says (its content lines, in any order).

        The model writes it into its reasoning, and reads it back from its earlier replies, to know
        whether its last action changed anything: the server keeps no state between requests.
        """
        lines = sorted(b.norm for b in self.content)
        return hashlib.sha1("\n".join(lines).encode()).hexdigest()[:6]

    # ---- coordinates
    def to_grid(self, x: float, y: float) -> tuple[int, int]:
        """A pixel of this screenshot on the model's grid (0..GRID_SIZE-1)."""
        gx = int(x * GRID_SIZE / self.width)
        gy = int(y * GRID_SIZE / self.height)
        return min(GRID_SIZE - 1, max(0, gx)), min(GRID_SIZE - 1, max(0, gy))

    def from_grid(self, point: Iterable[int]) -> tuple[float, float]:
        """A grid point back in this screenshot's pixels (the centre of its grid cell)."""
        gx, gy = point
        return (gx + 0.5) * self.width / GRID_SIZE, (gy + 0.5) * self.height / GRID_SIZE

    # ---- pixels
    def is_black(self) -> bool:
        """A secure window (FLAG_SECURE) or a screen that is off: screencap gives all black."""
        small = self.image[::8, ::8]
        return float(small.mean()) < 6.0 and int(small.max()) < 48

    def looks_like_starting_window(self) -> bool:
        """A splash while an app starts: at most an icon letter and the app's name, mid-screen.

        An empty but lit screen counts too; the remedy (Wait) is the same.
        """
        content = self.content
        if len(content) > 2:
            return False
        mid = [b for b in content if 0.3 * self.height < b.centre[1] < 0.7 * self.height]
        return len(mid) == len(content)

    def switch_near(self, label: TextBox) -> tuple[bool, tuple[float, float]] | None:
        """The state and centre of the switch at the right end of ``label``'s row, or None if none.

        A switch's track is blue-ish when on and mid-grey when off (Material and the virtual phone);
        its thumb is white either way, so the track's colour decides. The row band is the label's
        line plus the subtitle line under it.
        """
        h = max(label.height, 8.0)
        y0, y1 = int(max(0, label.y0 - h)), int(min(self.height, label.y1 + 2 * h))
        x0 = int(self.width * 0.7)
        region = self.image[y0:y1, x0:].astype(np.int16)
        if region.size == 0:
            return None
        r, g, b = region[..., 0], region[..., 1], region[..., 2]
        blue = (b - r > 80) & (b > 150)
        grey = (np.abs(r - g) < 14) & (np.abs(g - b) < 14) & (r > 160) & (r < 214)
        minimum = max(12, int(region.shape[0] * region.shape[1] * 0.004))
        on_count, off_count = int(blue.sum()), int(grey.sum())
        if max(on_count, off_count) < minimum:
            return None
        on = on_count >= off_count
        ys, xs = np.nonzero(blue if on else grey)
        return on, (x0 + float(xs.mean()), y0 + float(ys.mean()))

    def close_button(self, dialog: TextBox) -> tuple[float, float] | None:
        """Where the close "×" of the dialog around ``dialog`` (its title line) is, if it can be found.

        First an OCR line that is a close glyph, above the title and right of its centre; then the
        pale grey disc Material close buttons sit on (about (241, 243, 244) on a white card).
        """
        cx = dialog.centre[0]
        glyphs = [
            b for b in self.content
            if b.norm in CLOSE_GLYPHS and b.centre[1] < dialog.y0 and b.centre[0] > cx
        ]  # fmt: skip
        if glyphs:
            best = min(glyphs, key=lambda b: dialog.y0 - b.centre[1])
            return best.centre
        top = int(max(0, dialog.y0 - self.height * 0.3))
        x0 = int(cx)
        region = self.image[top : int(dialog.y0), x0:].astype(np.int16)
        if region.size == 0:
            return None
        disc = (np.abs(region - np.array([241, 243, 244])) <= 6).all(axis=-1) & (region.min(axis=-1) < 250)
        if int(disc.sum()) < 30:
            return None
        ys, xs = np.nonzero(disc)
        return x0 + float(np.median(xs)), top + float(np.median(ys))

    def button_right_of(self, box: TextBox) -> tuple[float, float] | None:
        """The centre of a coloured (blue-ish) icon button on ``box``'s row, right of it (a search button)."""
        y0, y1 = int(max(0, box.y0 - box.height)), int(min(self.height, box.y1 + box.height))
        x0 = int(box.x1)
        region = self.image[y0:y1, x0:].astype(np.int16)
        if region.size == 0:
            return None
        r, b = region[..., 0], region[..., 2]
        blue = (b - r > 80) & (b > 150)
        if int(blue.sum()) < 30:
            return None
        ys, xs = np.nonzero(blue)
        return x0 + float(np.median(xs)), y0 + float(np.median(ys))


__all__ = ["CLOSE_GLYPHS", "Phrase", "Screen"]
