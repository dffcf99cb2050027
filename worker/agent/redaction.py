"""Masking a screenshot before the model sees it and before it is stored (docs/security.md, "Redaction").

What is masked comes from the phone's view tree, read at each capture:

- **password fields**: the bounds of every node with ``password="true"`` (``RedactionRules.passwords``,
  on by default): what a password field shows (dots, or the last character typed on some
  keyboards) never reaches the model or the disk;
- **text patterns** (opt-in per tenant): the bounds of every node whose text or description, spaces
  and dashes aside, is wholly a match of one of the patterns (``redaction.text_patterns``: card
  numbers, national ID numbers, one-time codes). The text is the view tree's, not OCR's: the agent
  has no OCR of its own (RapidOCR is the reference model's, which the agent may not import), and
  the tree is read anyway for the password fields, so patterns cost a regex per node (bench:
  ``bench/bench_redaction.py``). Text drawn into a picture (an image of a card) is not found.

A region is filled black. The step records each region's bounds (screenshot pixels) and kind,
never what it held.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from device_pool.driver.ui_tree import UiElement, ui_elements

__all__ = ["PASSWORD", "Redaction", "RedactionRules", "mask", "regions"]

PASSWORD = "password"
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
    """What to mask: password fields, and text matching named patterns (kind, regex)."""

    passwords: bool = True
    patterns: tuple[tuple[str, str], ...] = ()
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in self.patterns)
        object.__setattr__(self, "_compiled", compiled)

    @property
    def active(self) -> bool:
        return self.passwords or bool(self.patterns)

    def kind_of(self, element: UiElement) -> str | None:
        """Why ``element`` is masked, or None when it is not."""
        if self.passwords and element.password:
            return PASSWORD
        if self._compiled and element.label:
            text = element.label.strip()
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
