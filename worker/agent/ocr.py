"""Reading the text on a screenshot with RapidOCR (its models ship inside the wheel; nothing is downloaded).

One engine per process, made on first use and shared: building it loads three ONNX models (about a
second), and onnxruntime already spreads one call over the cores, so calls are serialised by a lock.
Callers on an event loop use ``read_text_async``, which runs the work in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_engine: Any = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()


def normalise(text: str) -> str:
    """Text as the matcher compares it: NFKC, case-folded, without spaces (OCR often drops them)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"\s+", "", text)


@dataclass(frozen=True)
class TextBox:
    """One line of text found on the screen; the box is in the screenshot's pixels."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def norm(self) -> str:
        return normalise(self.text)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether the point lies in the box grown by ``margin`` pixels on every side."""
        return self.x0 - margin <= x <= self.x1 + margin and self.y0 - margin <= y <= self.y1 + margin


def _get_engine() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            t0 = time.monotonic()
            _engine = RapidOCR()
            logger.info("OCR engine loaded in %.2f s", time.monotonic() - t0)
        return _engine


def warm_up() -> None:
    """Load the engine now (about a second) so the first screenshot is not slower than the rest."""
    _get_engine()


def read_text(image: np.ndarray) -> list[TextBox]:
    """The text lines on an RGB image (H×W×3 uint8), top to bottom; blocking (≈0.3–0.8 s at 540×1200)."""
    engine = _get_engine()
    t0 = time.monotonic()
    with _run_lock:
        # Screens hold no rotated text, so the angle classifier only costs time.
        result, _ = engine(np.ascontiguousarray(image[:, :, ::-1]), use_cls=False)  # RapidOCR expects BGR
    boxes = []
    for points, text, score in result or []:
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        boxes.append(TextBox(str(text), min(xs), min(ys), max(xs), max(ys), float(score)))
    boxes.sort(key=lambda b: (b.y0, b.x0))
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("OCR: %d lines in %.2f s", len(boxes), time.monotonic() - t0)
    return boxes


async def read_text_async(image: np.ndarray) -> list[TextBox]:
    """``read_text`` off the event loop."""
    return await asyncio.to_thread(read_text, image)


__all__ = ["TextBox", "normalise", "read_text", "read_text_async", "warm_up"]
