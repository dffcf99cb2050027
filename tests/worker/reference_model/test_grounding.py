"""The reference model as a planner and a grounder: a point said in words is found again where it was."""

from __future__ import annotations

import numpy as np

from worker.agent.ocr import TextBox
from worker.reference_model.grounding import describe, locate
from worker.reference_model.screen import Screen


def _screen() -> Screen:
    boxes = [
        TextBox("Wi-Fi", 60, 300, 200, 340, 0.9), TextBox("Name", 60, 600, 180, 640, 0.9),
        TextBox("Name", 60, 900, 180, 940, 0.9), TextBox("Save", 900, 120, 1000, 160, 0.9),
    ]  # fmt: skip
    return Screen(np.zeros((2400, 1080, 3), dtype=np.uint8), boxes)


def test_a_described_point_is_located_where_it_was() -> None:
    screen = _screen()
    for point in [(900, 133), (110, 258), (110, 383), (880, 58), (500, 500)]:
        words = describe(screen, point)
        assert locate(screen, words) == point, words
    assert describe(screen, (900, 133)).endswith('of the text "Wi-Fi"')  # a switch by its row's label
    assert describe(screen, (110, 383)).startswith('the point') and 'the 2nd text "Name"' in describe(screen, (110, 383))


def test_a_plain_text_is_found_and_what_is_not_there_is_none() -> None:
    screen = _screen()
    assert locate(screen, "Save") == screen.to_grid(950, 140)
    assert locate(screen, 'the 3rd text "Name"') is None
    assert locate(screen, "the Bluetooth switch") is None
