"""Masking a screenshot before the model sees it and before it is stored (docs/security.md, "Redaction").

What is masked comes from the phone's view tree, read at each capture, and (opted in) from OCR of the
screenshot:

- **password fields**: the bounds of every node with ``password="true"`` (``RedactionRules.passwords``,
  on by default): what a password field shows (dots, or the last character typed on some
  keyboards) never reaches the model or the disk;
- **text patterns** (opt-in per tenant): the bounds of every node whose text or description, spaces
  and dashes aside, is wholly a match of one of the patterns (``redaction.text_patterns``: card
  numbers, national ID numbers, one-time codes; a regex per node), and, with ``text_source``
  ``ocr`` or ``both``, the box of every line RapidOCR reads on the screenshot (``ocr.py``) that is
  wholly a match: text drawn into a picture (an image of a card) is found too. OCR reads the image
  already masked by the tree, so a region is not recorded twice (``ocr_regions``; its cost per step
  is in ``bench/bench_redaction.py``).

A region is filled black. The step records each region's bounds (screenshot pixels) and kind,
never what it held.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from device_pool.driver.ui_tree import UiElement, ui_elements
from worker.agent import ocr

__all__ = ["PASSWORD", "TEXT_SOURCES", "Redaction", "RedactionRules", "mask", "ocr_regions", "regions"]

PASSWORD = "password"
TEXT_SOURCES = ("ui_tree", "ocr", "both")  # where the text patterns are looked for
_OCR_MARGIN = 3  # pixels added around an OCR box (its box is tight on the glyphs)
_OCR_MAX_SIDE = 1280  # a larger screenshot is read downscaled to this long side (OCR time grows with area)
_SEPARATORS = re.compile(r"[\s\-–—.]")


@dataclass(frozen=True)
class Redaction:
    """One masked region: ``bounds`` (left, top, right, bottom) in the screenshot's pixels."""

    bounds: tuple[int, int, int, int]
    kind: str  # "password", or the name of the text pattern it matched

    def as_json(self) -> dict[str, object]:
        return {"bounds": list(self.bounds), "kind": self.kind}


@dataclass(frozen=True)
class RedactionRules:
    """What to mask: password fields, and text matching named patterns (kind, regex), looked for in
    the view tree's text, the screenshot's OCR, or both (``text_source``)."""

    passwords: bool = True
    patterns: tuple[tuple[str, str], ...] = ()
    text_source: str = "both"
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.text_source not in TEXT_SOURCES:
            raise ValueError(f"text_source must be one of {TEXT_SOURCES}, not {self.text_source!r}")
        compiled = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in self.patterns)
        object.__setattr__(self, "_compiled", compiled)

    @property
    def active(self) -> bool:
        return self.passwords or bool(self.patterns)

    @property
    def tree_patterns(self) -> bool:
        return bool(self._compiled) and self.text_source in ("ui_tree", "both")

    @property
    def ocr_patterns(self) -> bool:
        return bool(self._compiled) and self.text_source in ("ocr", "both")

    def kind_of(self, element: UiElement) -> str | None:
        """Why ``element`` is masked, or None when it is not."""
        if self.passwords and element.password:
            return PASSWORD
        if self.tree_patterns and element.label:
            return self.kind_of_text(element.label)
        return None

    def kind_of_text(self, text: str) -> str | None:
        """The first pattern ``text`` (spaces and dashes aside) wholly matches, or None."""
        text = text.strip()
        bare = _SEPARATORS.sub("", text)
        for kind, pattern in self._compiled:
            if pattern.fullmatch(text) or (bare and pattern.fullmatch(bare)):
                return kind
        return None


def regions(
    ui_xml: str, rules: RedactionRules, screen_size: tuple[int, int], image_size: tuple[int, int]
) -> list[Redaction]:
    """The regions of a screenshot ``image_size`` large to mask, from the view tree of a screen
    ``screen_size`` large (the tree's pixels), in the tree's order."""
    sx, sy = image_size[0] / screen_size[0], image_size[1] / screen_size[1]
    found = []
    for element in ui_elements(ui_xml):
        kind = rules.kind_of(element)
        if kind is None:
            continue
        left, top, right, bottom = element.bounds
        box = (
            max(0, int(left * sx)), max(0, int(top * sy)),
            min(image_size[0], -int(-right * sx)), min(image_size[1], -int(-bottom * sy)),
        )  # fmt: skip
        if box[2] > box[0] and box[3] > box[1]:
            found.append(Redaction(box, kind))
    return found


def ocr_regions(image: Image.Image, rules: RedactionRules, masked: Sequence[Redaction] = ()) -> list[Redaction]:
    """The lines of text OCR reads on ``image`` that wholly match one of the patterns, as regions of
    ``image`` (grown by a few pixels), leaving out any that lies within a region of ``masked``.
    Blocking (the OCR engine: a second to load once, then the time in ``bench/bench_redaction.py``);
    nothing when ``rules`` does not look for patterns by OCR."""
    if not rules.ocr_patterns:
        return []
    width, height = image.size
    scale = min(1.0, _OCR_MAX_SIDE / max(width, height))  # a phone's text stays legible at half size
    read = image.convert("RGB")
    if scale < 1.0:
        read = read.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR)
    found: list[Redaction] = []
    for line in ocr.read_text(np.asarray(read)):
        kind = rules.kind_of_text(line.text)
        if kind is None:
            continue
        box = (
            max(0, int(line.x0 / scale) - _OCR_MARGIN), max(0, int(line.y0 / scale) - _OCR_MARGIN),
            min(width, -int(-line.x1 / scale) + _OCR_MARGIN), min(height, -int(-line.y1 / scale) + _OCR_MARGIN),
        )  # fmt: skip
        if box[2] > box[0] and box[3] > box[1] and not any(_within(box, other.bounds) for other in [*masked, *found]):
            found.append(Redaction(box, kind))
    return found


def _within(box: tuple[int, int, int, int], other: tuple[int, int, int, int], share: float = 0.8) -> bool:
    """Whether at least ``share`` of ``box``'s area lies inside ``other``."""
    left, top = max(box[0], other[0]), max(box[1], other[1])
    right, bottom = min(box[2], other[2]), min(box[3], other[3])
    inside = max(0, right - left) * max(0, bottom - top)
    return inside >= share * (box[2] - box[0]) * (box[3] - box[1])


def mask(image: Image.Image, found: list[Redaction]) -> Image.Image:
    """A copy of ``image`` with every region filled black (``image`` itself when there is none)."""
    if not found:
        return image
    masked = image.copy()
    draw = ImageDraw.Draw(masked)
    bands = masked.getbands()
    fill = 0 if len(bands) == 1 else tuple(255 if band == "A" else 0 for band in bands)
    for region in found:
        left, top, right, bottom = region.bounds
        draw.rectangle((left, top, right - 1, bottom - 1), fill=fill)
    return masked
