"""A trajectory as an AndroidControl episode: goal, screenshots, accessibility trees, actions.

AndroidControl (Google Research's dataset of phone demonstrations; the field list is in the
``android_control`` README of github.com/google-research/google-research) stores an episode as
``episode_id``, ``goal``, ``screenshots`` (PNG), ``screenshot_widths``, ``screenshot_heights``,
``accessibility_trees``, ``actions`` (JSON objects with an ``action_type``) and
``step_instructions``, with one action between each two consecutive screenshots. The mapping from
our actions, and what is lost, is in docs/trajectories.md ("AndroidControl episodes").

The episode is written as a folder: ``episode.json`` holds the fields, with file names where the
dataset holds bytes (``screenshots/<n>.png``, ``accessibility_trees/<n>.xml``).
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.services.trajectories import LoadedStep, Trajectory, screens

__all__ = ["Episode", "android_control_action", "episode_id_for", "to_episode", "write_episode"]


@dataclass
class Episode:
    fields: dict[str, Any]  # episode.json
    files: dict[str, bytes]  # name inside the folder -> bytes


def _scroll_direction(start: list[int], end: list[int]) -> str:
    """The way the content scrolls for a finger moving from ``start`` to ``end``: the other way.

    A finger moving up brings what is below into view: the list scrolls ``down``.
    """
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dy) >= abs(dx):
        return "down" if dy < 0 else "up"
    return "right" if dx < 0 else "left"


def android_control_action(step: LoadedStep) -> dict[str, Any] | None:
    """The step's action as AndroidControl writes it (pixels), or None when it has no counterpart."""
    action, px = step.action, step.action_px
    if action is None or step.result != "ok":
        return None
    name = action.get("name")
    if name in ("Tap", "Double Tap", "Long Press"):
        if px is None:
            return None
        x, y = px["element"]
        return {"action_type": "long_press" if name == "Long Press" else "click", "x": x, "y": y}
    if name == "Swipe":
        if px is None:
            return None
        return {"action_type": "scroll", "direction": _scroll_direction(px["start"], px["end"])}
    if name in ("Type", "Type_Name"):
        return {"action_type": "input_text", "text": action.get("text", "")}
    if name == "Launch":
        return {"action_type": "open_app", "app_name": action.get("app", "")}
    if name == "Back":
        return {"action_type": "navigate_back"}
    if name == "Home":
        return {"action_type": "navigate_home"}
    if name == "Wait":
        return {"action_type": "wait"}
    return None  # finish, Take_over, Interact, Note, Call_API, Hand_back: nothing done on the phone


def episode_id_for(trajectory: Trajectory) -> int:
    """An integer id (the dataset's kind) from the task's id: its first 60 bits; 0 without one."""
    try:
        return int(uuid.UUID(trajectory.task_id or "").hex[:15], 16)
    except ValueError:
        return 0


def _png(data: bytes) -> tuple[bytes, int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
        return out.getvalue(), image.width, image.height


def to_episode(trajectory: Trajectory, episode_id: int | None = None) -> Episode:
    """The episode: each step with a counterpart and a known screen before it is one action.

    An action whose screen after it was not recorded ends the episode there (the dataset has a
    screenshot after every action).
    """
    pairs: list[tuple[str, str, dict[str, Any], LoadedStep]] = []
    for step, seen in zip(trajectory.steps, screens(trajectory), strict=True):
        mapped = android_control_action(step)
        if mapped is None or seen.before is None:
            continue
        if seen.after is None:
            break
        pairs.append((seen.before, seen.after, mapped, step))
    shots = [before for before, _, _, _ in pairs] + ([pairs[-1][1]] if pairs else [])
    files: dict[str, bytes] = {}
    names, widths, heights, trees = [], [], [], []
    for n, shot in enumerate(shots):
        png, width, height = _png(trajectory.read(shot))
        files[f"screenshots/{n}.png"] = png
        names.append(f"screenshots/{n}.png")
        widths.append(width)
        heights.append(height)
        trees.append(None)
    for n, (_, _, _, step) in enumerate(pairs):
        dump = step.line.get("ui_dump")
        if isinstance(dump, str):  # the tree of the screen the action was taken on
            files[f"accessibility_trees/{n}.xml"] = trajectory.read(dump)
            trees[n] = f"accessibility_trees/{n}.xml"
    fields = {
        "episode_id": episode_id_for(trajectory) if episode_id is None else episode_id,
        "goal": trajectory.instruction,
        "screenshots": names,
        "screenshot_widths": widths,
        "screenshot_heights": heights,
        "accessibility_trees": trees,
        "actions": [mapped for _, _, mapped, _ in pairs],
        "step_instructions": [" ".join(str(step.line.get("thinking") or "").split()) for *_, step in pairs],
    }
    return Episode(fields, files)


def write_episode(episode: Episode, out: Path) -> Path:
    """Write ``episode.json`` and its files into the folder ``out``; answers the JSON's path."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in episode.files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)
    path = out / "episode.json"
    path.write_text(json.dumps(episode.fields, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path
