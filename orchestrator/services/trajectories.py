"""Reading a trajectory back, whichever way it was saved, as one ``Trajectory``.

Two layouts hold the same lines (docs/trajectories.md): the API's zip (``task.json``,
``steps.jsonl``, ``screenshots/<index>.<ext>``; also accepted unzipped, as a folder) and the folder
``phonefleet run`` writes (``trajectory.jsonl``, ``step-NNN.jpg``, ``result.json``). Lines written
before the keys for training and replay existed are completed here: ``screen_size`` from the screenshot, and
``action_px`` from it. The converter to AndroidControl episodes and ``phonefleet replay`` read
trajectories only through ``load_trajectory``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from device_pool.grid import action_pixels
from orchestrator.errors import InvalidTrajectory

__all__ = ["LoadedStep", "Screens", "Trajectory", "load_trajectory", "screens"]


@dataclass(frozen=True)
class LoadedStep:
    """One line of a trajectory, with what the keys for training and replay say about it."""

    index: int
    line: dict[str, Any]
    screen_size: tuple[int, int] | None
    action_px: dict[str, Any] | None

    @property
    def actor(self) -> str:
        """``agent``, or ``user`` for what a person did (whose screenshot is the screen *after* it)."""
        return str(self.line.get("actor") or "agent")

    @property
    def action(self) -> dict[str, Any] | None:
        return self.line.get("action")

    @property
    def result(self) -> str:
        return str(self.line.get("result") or "")

    @property
    def screenshot(self) -> str | None:
        return self.line.get("screenshot")


@dataclass
class Trajectory:
    """A task's steps and where their screenshots are; ``read`` gives a screenshot's bytes."""

    source: Path
    instruction: str
    task: dict[str, Any]  # task.json, or phonefleet run's result.json
    steps: list[LoadedStep] = field(default_factory=list)
    _zip: zipfile.ZipFile | None = None

    @property
    def task_id(self) -> str | None:
        value = self.task.get("id")
        return str(value) if value is not None else None

    @property
    def score(self) -> float | None:
        result = self.task.get("result") if isinstance(self.task.get("result"), dict) else {}
        score = self.task.get("score", (result or {}).get("score"))
        return float(score) if score is not None else None

    def read(self, name: str) -> bytes:
        """The bytes of the file ``name`` (a screenshot's path as its line gives it)."""
        _check_name(name)
        try:
            if self._zip is not None:
                return self._zip.read(name)
            return (self.source / name).read_bytes()
        except (KeyError, OSError) as exc:
            raise InvalidTrajectory(f"{self.source}: {name} is named by a step but missing") from exc

    def image_named(self, name: str | None) -> Image.Image | None:
        """The screenshot ``name`` decoded (RGB); None for None."""
        if name is None:
            return None
        try:
            with Image.open(io.BytesIO(self.read(name))) as image:
                return image.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidTrajectory(f"{self.source}: {name} is not an image") from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Trajectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_name(name: str) -> None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise InvalidTrajectory(f"a step names {name!r}, outside the trajectory")


def _lines(text: str, where: str) -> list[dict[str, Any]]:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidTrajectory(f"{where} line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(line, dict) or not isinstance(line.get("index"), int):
            raise InvalidTrajectory(f"{where} line {number}: a step is an object with an integer index")
        lines.append(line)
    return lines


def load_trajectory(path: Path | str) -> Trajectory:
    """The trajectory at ``path``: the API's zip, that zip unzipped, or ``phonefleet run``'s folder."""
    source = Path(path)
    if source.is_file():
        try:
            archive = zipfile.ZipFile(source)
        except zipfile.BadZipFile as exc:
            raise InvalidTrajectory(f"{source}: neither a zip nor a folder") from exc
        names = set(archive.namelist())
        if "steps.jsonl" not in names:
            archive.close()
            raise InvalidTrajectory(f"{source}: a trajectory zip holds steps.jsonl")
        task = json.loads(archive.read("task.json")) if "task.json" in names else {}
        trajectory = Trajectory(source, str(task.get("instruction") or ""), task, _zip=archive)
        lines = _lines(archive.read("steps.jsonl").decode("utf-8"), f"{source}:steps.jsonl")
    elif (source / "steps.jsonl").is_file():
        task_file = source / "task.json"
        task = json.loads(task_file.read_text("utf-8")) if task_file.is_file() else {}
        trajectory = Trajectory(source, str(task.get("instruction") or ""), task)
        lines = _lines((source / "steps.jsonl").read_text("utf-8"), f"{source}/steps.jsonl")
    elif (source / "trajectory.jsonl").is_file():
        result_file = source / "result.json"
        result = json.loads(result_file.read_text("utf-8")) if result_file.is_file() else {}
        trajectory = Trajectory(source, str(result.get("task") or ""), result)
        lines = _lines((source / "trajectory.jsonl").read_text("utf-8"), f"{source}/trajectory.jsonl")
    else:
        raise InvalidTrajectory(f"{source}: no trajectory there (steps.jsonl or trajectory.jsonl)")
    size: tuple[int, int] | None = None
    for line in sorted(lines, key=lambda line: line["index"]):
        if not trajectory.instruction and line.get("instruction"):
            trajectory.instruction = str(line["instruction"])
        size = _size_of(trajectory, line) or size
        trajectory.steps.append(
            LoadedStep(line["index"], line, size, action_pixels(line.get("action"), size))
        )
    return trajectory


def _size_of(trajectory: Trajectory, line: dict[str, Any]) -> tuple[int, int] | None:
    """The screen's size at a line: as written, or read from its screenshot's header."""
    written = line.get("screen_size")
    if isinstance(written, list) and len(written) == 2:
        return int(written[0]), int(written[1])
    if line.get("screenshot") is None:
        return None
    try:
        with Image.open(io.BytesIO(trajectory.read(line["screenshot"]))) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


@dataclass(frozen=True)
class Screens:
    """The screen before and after one step, as screenshot names (None where none was recorded)."""

    before: str | None
    after: str | None


def screens(trajectory: Trajectory) -> list[Screens]:
    """Each step's screen before and after it, from the screenshots recorded.

    An agent's step holds the screen it saw (before); what it led to is the next agent step's
    screenshot (unknown when a person's step comes next, or nothing does). A person's step holds
    the screen after it; the one before is the step before's after, or, when that is unknown, the
    step before's own screenshot (the screen the agent last saw when it handed over).
    """
    steps = trajectory.steps
    out: list[Screens] = []
    for i, step in enumerate(steps):
        if step.actor == "user":
            previous = out[-1] if out else None
            before = (previous.after or steps[i - 1].screenshot) if previous is not None else None
            out.append(Screens(before, step.screenshot))
            continue
        following = steps[i + 1] if i + 1 < len(steps) else None
        after = following.screenshot if following is not None and following.actor == "agent" else None
        out.append(Screens(step.screenshot, after))
    return out
