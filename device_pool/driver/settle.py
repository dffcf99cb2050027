"""Waiting for the screen to stop changing, by comparing successive raw frames byte for byte."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from PIL import Image

from device_pool.driver.screenshot import RawFrame


@dataclass(frozen=True)
class SettleResult:
    """The last frame of a settle wait, whether it settled, and what it cost."""

    image: Image.Image
    settled: bool
    frames: int
    elapsed_s: float


async def wait_for_settle(
    capture: Callable[[], Awaitable[RawFrame]],
    timeout: float,
    interval: float,
    stable_frames: int,
) -> SettleResult:
    """Capture until ``stable_frames`` frames in a row are identical or ``timeout`` s pass (settled=False)."""
    if stable_frames < 1:
        raise ValueError("stable_frames must be at least 1")
    start = time.monotonic()
    deadline = start + timeout
    previous: RawFrame | None = None
    same = 0
    count = 0
    while True:
        frame = await capture()
        count += 1
        # Equal buffers (header included) are equal frames; bytes == is a memcmp, the cheapest test.
        same = same + 1 if frame.same_pixels(previous) else 1
        previous = frame
        if same >= stable_frames:
            return SettleResult(frame.image(), True, count, time.monotonic() - start)
        if time.monotonic() + interval > deadline:
            return SettleResult(frame.image(), False, count, time.monotonic() - start)
        await asyncio.sleep(interval)
