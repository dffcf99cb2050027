"""A task's trajectory as one zip, streamed: ``task.json``, ``steps.jsonl``, ``screenshots/<index>.<ext>``.

- ``task.json``: the task as ``GET /api/v1/tasks/{id}`` shows it (``result`` included; a task
  chain's ``subgoals``, each with its status and result).
- ``steps.jsonl``: one step a line, as ``GET /api/v1/tasks/{id}/steps`` shows it, except that
  ``screenshot_url`` is replaced by ``screenshot``, the image's path inside the zip (or null) — the
  same key and meaning as in the ``trajectory.jsonl`` that ``phonefleet run`` writes (a chain's
  steps carry their ``subgoal``) — plus the keys for training and replay (docs/trajectories.md):
  ``instruction``, ``screen_size`` (read from the screenshot), ``action_px`` (the action's grid
  points as pixels), ``ui_dump`` and ``score``.
- ``screenshots/<index>.<ext>``: the images the model saw (``.jpg`` or ``.png``, as stored).
- ``recording.mp4``: the phone's video of an ended task, when it has one the caller may play
  (docs/recordings.md); each step's ``timings.video_ms`` is where its screenshot is in it.

A running task's trajectory is a snapshot: the steps committed when it was read.

**Why a generator over ``zipfile``, not a spooled temp file.** ``zipfile`` writing to a sink that
cannot seek puts each entry's sizes and CRC in a data descriptor after its data, so every chunk can
go to the client as soon as it is written: memory stays at one screenshot plus zlib's state, the
first byte leaves at once, and nothing touches the disk. A spooled file would build the whole archive
(on disk when large) before the first byte. The cost is the data descriptor, which every common
reader handles (Python, Info-ZIP, 7-Zip, libarchive, Windows) except for *stored* entries in Java's
``ZipInputStream``; so every entry is deflated, images at level 0 (deflate's stored blocks: JPEG and
PNG do not shrink, and level 1 still costs tens of milliseconds of CPU per MB).

Screenshots are written before ``steps.jsonl``, so a line names only a file that made it into the
archive (a file deleted meanwhile, or unreadable, is left out and its line says null).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from device_pool.grid import action_pixels
from orchestrator.encryption import SealedDamaged, SealedWithOtherKey

__all__ = [
    "SCREENSHOT_TYPES",
    "TrajectoryStep",
    "ZipSink",
    "trajectory_filename",
    "trajectory_zip",
    "zip_entry",
]

logger = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024  # steps.jsonl is handed on in pieces of about this size

# Extensions a screenshot keeps inside the zip; anything else is named .bin.
SCREENSHOT_TYPES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass(frozen=True)
class TrajectoryStep:
    """A step to archive: its JSON as the steps API shows it, and its screenshot file (or None)."""

    index: int
    line: dict[str, Any]
    screenshot: Path | None  # already checked to lie under data_dir; read when archived


def trajectory_filename(task_id: object) -> str:
    """The download's file name."""
    return f"task-{task_id}.zip"


class ZipSink(io.RawIOBase):
    """A write-only, unseekable file: ``zipfile`` writes into it, the generator drains it."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        return len(chunk)

    @property
    def buffered(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def trajectory_zip(
    task: dict[str, Any],
    steps: Sequence[TrajectoryStep],
    *,
    now: dt.datetime | None = None,
    read: Callable[[Path], bytes] = Path.read_bytes,
    recording: Iterable[bytes] | None = None,
) -> Iterator[bytes]:
    """The zip's bytes, a piece at a time (a blocking generator: serve it from a thread). ``read``:
    a screenshot's plain bytes (``StepService.read`` opens sealed ones); one it cannot read is left out."""
    stamp = (now or dt.datetime.now(dt.UTC)).timetuple()[:6]
    sink = ZipSink()

    def entry(name: str) -> zipfile.ZipInfo:
        return zip_entry(name, stamp)

    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(entry("task.json"), _dumps(task, indent=2) + "\n")
        yield sink.drain()
        archived: dict[int, str] = {}
        sizes: dict[int, tuple[int, int]] = {}
        for step in steps:
            if step.screenshot is None:
                continue
            try:
                # One image at a time in memory; read whole, so a failing read leaves no half entry.
                data = read(step.screenshot)
            except (OSError, SealedWithOtherKey, SealedDamaged) as exc:
                logger.warning(
                    "screenshot left out of the trajectory",
                    extra={"step": step.index, "path": str(step.screenshot), "error": str(exc)},
                )
                continue
            suffix = step.screenshot.suffix.lower()
            name = f"screenshots/{step.index}{suffix if suffix in SCREENSHOT_TYPES else '.bin'}"
            archive.writestr(entry(name), data, compresslevel=0)
            archived[step.index] = name
            size = _image_size(data)
            if size is not None:
                sizes[step.index] = size
            yield sink.drain()
        if recording is not None:
            # The video as it is, a piece at a time (deflate's stored blocks: H.264 does not shrink).
            info = entry("recording.mp4")
            info._compresslevel = 0  # type: ignore[attr-defined]  # what writestr(compresslevel=0) sets
            with archive.open(info, "w", force_zip64=True) as video:
                for piece in recording:
                    video.write(piece)
                    yield sink.drain()
        # The screen's size: the step's own screenshot's, else the latest one before it (a step
        # without a screenshot acted on the same screen).
        extra = _task_keys(task)
        size: tuple[int, int] | None = None
        with archive.open(entry("steps.jsonl"), "w") as lines:
            for step in steps:
                size = sizes.get(step.index, size)
                line = step_line(step.line, archived.get(step.index), size=size, **extra)
                lines.write((_dumps(line) + "\n").encode())
                if sink.buffered >= _CHUNK_BYTES:
                    yield sink.drain()
    yield sink.drain()  # the last entry's descriptor and the central directory


def zip_entry(name: str, stamp: tuple[int, ...]) -> zipfile.ZipInfo:
    """A deflated regular file (rw-r--r--) of the zip, dated ``stamp``."""
    info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def step_line(
    step: dict[str, Any],
    screenshot: str | None,
    *,
    size: tuple[int, int] | None = None,
    instruction: str | None = None,
    score: float | None = None,
) -> dict[str, Any]:
    """A ``steps.jsonl`` line: the step's API JSON with ``screenshot`` (a path in the zip) for its URL,
    and the keys for training and replay (docs/trajectories.md, "A step")."""
    line = {key: value for key, value in step.items() if key != "screenshot_url"}
    line["screenshot"] = screenshot
    line["instruction"] = instruction
    line["screen_size"] = list(size) if size is not None else None
    line["action_px"] = action_pixels(step.get("action"), size)
    line.setdefault("ui_dump", None)  # no run takes one yet: the key is there for when it does
    line["score"] = score
    return line


def _task_keys(task: dict[str, Any]) -> dict[str, Any]:
    """What every line repeats from the task: its instruction, and its score when it has one."""
    result = task.get("result") or {}
    score = task.get("score", result.get("score") if isinstance(result, dict) else None)
    return {"instruction": task.get("instruction"), "score": score}


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header (nothing is decoded); None for what is not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)
