"""The reference model as a planner or a grounder (``--role``; docs/models.md, "Planner and grounder").

The rules decide with points, so as a planner the reference model says where a point is in words it
can find again: the text line nearest to it, which of the lines with that text it is (counted from
the top), and how far the point lies from that line's centre, on the grid (thousandths of the
screen). As a grounder it reads such a target back off the screenshot it is sent, with its own OCR.
On the screen it was written for, ``locate(describe(p)) == p``: the planner reads its own earlier
targets back that way to know which action it took. A real grounder gets a description such as
"the Wi-Fi switch"; this one understands its planner's.
"""

from __future__ import annotations

import re

from worker.agent.actions import GRID_SIZE
from worker.agent.ocr import TextBox, normalise
from worker.reference_model.screen import Screen

__all__ = ["describe", "locate"]

_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd"}
_TARGET = re.compile(
    r'^(?:the point (?P<dx>\d+) (?P<h>left|right) and (?P<dy>\d+) (?P<v>up|down) of )?'
    r'the (?:(?P<nth>\d+)(?:st|nd|rd|th) )?text "(?P<text>.*)"$',
    re.DOTALL,
)


def _distance(box: TextBox, x: float, y: float) -> float:
    dx = max(box.x0 - x, 0.0, x - box.x1)
    dy = max(box.y0 - y, 0.0, y - box.y1)
    return (dx * dx + dy * dy) ** 0.5


def describe(screen: Screen, point: tuple[int, int]) -> str:
    """A grid point as words anchored on the nearest text line; the point itself when there is no text."""
    x, y = screen.from_grid(point)
    lines = screen.content
    if not lines:
        return f"the point {point[0]},{point[1]} of {GRID_SIZE}"
    # A line of the point's own row first: a switch or a button is named by its row's label.
    row = [b for b in lines if b.y0 <= y <= b.y1]
    box = min(row or lines, key=lambda b: _distance(b, x, y))
    same = [b for b in lines if b.norm == box.norm]
    nth = same.index(box) + 1
    which = f"the {_ORDINAL.get(nth, f'{nth}th')} " if len(same) > 1 else "the "
    anchor = f'{which}text "{box.text}"'
    cx, cy = screen.to_grid(*box.centre)
    dx, dy = point[0] - cx, point[1] - cy
    if dx == dy == 0:
        return anchor
    h, v = ("right" if dx >= 0 else "left"), ("down" if dy >= 0 else "up")
    return f"the point {abs(dx)} {h} and {abs(dy)} {v} of {anchor}"


def locate(screen: Screen, target: str) -> tuple[int, int] | None:
    """Where ``target`` (``describe``'s words, or a text on the screen) is, on the grid; None: not here."""
    found = _TARGET.match(target.strip().strip("."))
    if found is None:
        box = screen.find(target.strip().strip('"'))
        return screen.to_grid(*box.centre) if box is not None else None
    wanted = normalise(found.group("text"))
    same = [b for b in screen.content if b.norm == wanted] or screen.find_all(found.group("text"))
    nth = int(found.group("nth") or 1)
    if len(same) < nth:
        return None
    cx, cy = screen.to_grid(*same[nth - 1].centre)
    dx = int(found.group("dx") or 0) * (-1 if found.group("h") == "left" else 1)
    dy = int(found.group("dy") or 0) * (-1 if found.group("v") == "up" else 1)
    return min(GRID_SIZE - 1, max(0, cx + dx)), min(GRID_SIZE - 1, max(0, cy + dy))
