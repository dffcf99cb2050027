"""Saving a run as a trajectory: ``trajectory.jsonl`` (one step a line), screenshots, ``result.json``.

A line has the keys of the API's ``steps.jsonl`` (docs/trajectories.md, "A step"), those for
training and replay included: ``instruction``, ``screen_size``, ``action_px``, ``ui_dump``, ``score`` (null: a run
from the terminal has no check).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from device_pool.grid import action_pixels
from worker.agent.results import WAITING, AgentResult, StepRecord


class TrajectoryWriter:
    """Writes into ``directory``: step-NNN.jpg, trajectory.jsonl and, at the end, result.json."""

    def __init__(self, directory: Path, *, jpeg_quality: int = 80, instruction: str | None = None) -> None:
        self.directory = Path(directory)
        self.instruction = instruction
        self.size: tuple[int, int] | None = None  # the latest screenshot's: the screen's
        self.directory.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.directory / "trajectory.jsonl"
        self.jpeg_quality = jpeg_quality

    def _write_step(self, step: StepRecord) -> None:
        if step.result == WAITING:
            return  # a step that asks a person comes again with its end: one line per step
        line: dict[str, Any] = step.to_json()
        if step.screenshot is not None:
            name = f"step-{step.index:03d}.jpg"
            step.screenshot.convert("RGB").save(self.directory / name, quality=self.jpeg_quality)
            line["screenshot"] = name
            self.size = step.screenshot.size
        line.setdefault("screenshot", None)
        line["instruction"] = self.instruction
        line["screen_size"] = list(self.size) if self.size is not None else None
        line["action_px"] = action_pixels(step.action, self.size)
        line["ui_dump"] = None
        line["score"] = None
        with self.jsonl.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")

    async def write_step(self, step: StepRecord) -> None:
        # JPEG encoding and file I/O stay off the event loop.
        await asyncio.to_thread(self._write_step, step)

    async def write_result(self, task: str, result: AgentResult, extra: dict[str, Any] | None = None) -> None:
        body = {"task": task, **result.to_json(), **(extra or {})}
        text = json.dumps(body, ensure_ascii=False, indent=2)
        await asyncio.to_thread((self.directory / "result.json").write_text, text, "utf-8")
