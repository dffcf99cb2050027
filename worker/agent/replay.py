"""Replaying recorded actions on a phone without a model, and finding where its screen parts from the recording.

``replay(device, steps, start=…)`` carries each recorded action out through the agent's own executor
(``ActionExecutor``: the same grid-to-pixel conversion, gestures and timings as a run), waits for
the screen to settle as the loop does, and compares what the phone shows with the screenshot
recorded after that step. The first step whose screen differs ends the replay and is reported.

**How screens are compared** (``screen_distance``): both images in grey, the recorded one scaled to
the phone's size if they differ, the top ``ignore_top`` of the height (the status bar: clock,
battery, signal) left out, then averaged over blocks of ``block`` x ``block`` pixels; the distance
is the largest difference of one block's mean, over 255. Averaging a block wipes out JPEG noise
(a few levels per pixel) while a real change of a region as small as a switch moves whole blocks
by far more; the default threshold, 0.1 (26 grey levels on one 16 x 16 block), sits between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageChops
from pydantic import ValidationError

from worker.agent import actions as a
from worker.agent.errors import ActionRejected
from worker.agent.executor import ActionExecutor
from worker.agent.grammar import ACTIONS
from worker.agent.loop import AgentConfig
from worker.agent.steering import AgentHooks, AgentSteering

__all__ = ["DEFAULT_THRESHOLD", "ReplayReport", "ReplayStep", "replay", "screen_distance"]

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.1
BLOCK = 16
IGNORE_TOP = 0.04


@dataclass(frozen=True)
class ReplayStep:
    """A recorded step: its index, its action (the grid JSON), the screen recorded after it (or None)."""

    index: int
    action: dict[str, Any]
    expected: Image.Image | None


@dataclass
class ReplayReport:
    steps_run: int = 0  # actions carried out
    checked: int = 0  # screens compared
    diverged_at: int | None = None  # the first step whose screen differs (None: reproduced)
    phase: str | None = None  # "before": the phone did not start where the recording did; "after"
    distance: float | None = None  # at the divergence
    stopped: str | None = None  # why the replay could not go on (an action that cannot be replayed)
    distances: list[tuple[int, str, float]] = field(default_factory=list)  # (step, phase, distance)

    @property
    def reproduced(self) -> bool:
        return self.diverged_at is None and self.stopped is None

    def to_json(self) -> dict[str, Any]:
        return {
            "reproduced": self.reproduced, "steps_run": self.steps_run, "checked": self.checked,
            "diverged_at": self.diverged_at, "phase": self.phase, "distance": self.distance,
            "stopped": self.stopped, "distances": [[i, phase, d] for i, phase, d in self.distances],
        }  # fmt: skip


def screen_distance(
    shown: Image.Image, recorded: Image.Image, *, block: int = BLOCK, ignore_top: float = IGNORE_TOP
) -> float:
    """How far apart two screens are, 0..1: the largest difference of one block's mean grey (module doc)."""
    first = shown.convert("L")
    second = recorded.convert("L")
    if second.size != first.size:
        second = second.resize(first.size, Image.Resampling.BILINEAR)
    top = int(first.height * ignore_top)
    box = (0, top, first.width, first.height)
    first, second = first.crop(box).reduce(block), second.crop(box).reduce(block)
    return ImageChops.difference(first, second).getextrema()[1] / 255.0


class _ReplayHooks(AgentHooks):
    """A recorded sensitive tap that went through was approved then: approve it again."""

    async def request_confirmation(self, action: Any, message: str, element_label: str | None = None) -> bool:
        return True


def parse_recorded(action: dict[str, Any]) -> a.ActionModel | None:
    """The recorded action as the grammar's model; None for what is not one (a hand-back).

    ValidationError for a recorded action that cannot be carried out again (a person's redacted Type).
    """
    model = ACTIONS.get(str(action.get("name")))
    return None if model is None else model.model_validate(action)


async def _settled(device: Any, action: a.ActionModel, config: AgentConfig) -> Image.Image:
    launch = isinstance(action, a.Launch)
    settled = await device.wait_for_settle(
        timeout=config.settle_timeout_s,
        interval=config.launch_settle_interval_s if launch else config.settle_interval_s,
        stable_frames=2 if launch else config.settle_frames,
    )
    return settled.image


async def replay(
    device: Any,
    steps: list[ReplayStep],
    *,
    start: Image.Image | None = None,
    first_index: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    config: AgentConfig | None = None,
) -> ReplayReport:
    """Carry ``steps`` out on ``device`` (an ``AdbDevice``), checking each screen against the recording.

    ``start`` is the screen the recording began on (compared before anything is done, reported
    as step ``first_index``, phase ``before``). Steps whose action does nothing on the phone
    (finish, Note, a question…) are passed over.
    """
    config = config or AgentConfig()
    report = ReplayReport()
    if start is not None:
        now = await device.wait_for_settle(timeout=config.settle_timeout_s, interval=config.settle_interval_s)
        distance = screen_distance(now.image, start)
        report.checked += 1
        report.distances.append((first_index, "before", distance))
        if distance > threshold:
            report.diverged_at, report.phase, report.distance = first_index, "before", distance
            return report
    executor = ActionExecutor(
        device, await device.screen_size(), _ReplayHooks(), AgentSteering(),
        wait_cap_s=config.wait_cap_s, lang=config.lang,
    )  # fmt: skip
    for step in steps:
        try:
            action = parse_recorded(step.action)
        except ValidationError as exc:
            report.stopped = f"step {step.index}: its action cannot be replayed ({exc.errors()[0]['msg']})"
            return report
        if action is None or not type(action).acts_on_phone:
            continue
        try:
            await executor.execute(action)
        except ActionRejected as exc:
            report.stopped = f"step {step.index}: {exc}"
            return report
        report.steps_run += 1
        shown = await _settled(device, action, config) if action.changes_screen else None
        if step.expected is None or shown is None:
            continue
        distance = screen_distance(shown, step.expected)
        report.checked += 1
        report.distances.append((step.index, "after", distance))
        logger.info("replayed a step", extra={"step": step.index, "distance": round(distance, 4)})
        if distance > threshold:
            report.diverged_at, report.phase, report.distance = step.index, "after", distance
            return report
    return report
