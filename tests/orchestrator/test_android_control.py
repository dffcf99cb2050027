"""Reading a trajectory zip back and converting it to an AndroidControl episode, field by field, on a
hand-made trajectory whose every screenshot has a colour of its own (so each can be told apart)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.errors import InvalidTrajectory
from orchestrator.services.android_control import android_control_action, to_episode, write_episode
from orchestrator.services.trajectories import LoadedStep, load_trajectory, screens
from worker.agent.replay import screen_distance

TASK_ID = uuid.UUID("0b5f1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d")


def _image(shade: int, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (100, 200), (shade, 255 - shade, 0)).save(out, format=fmt)
    return out.getvalue()


def _step(index: int, action: dict | None, *, actor: str = "agent", shot: bool = True, result: str = "ok") -> dict:
    return {"index": index, "actor": actor, "thinking": f"think {index}" if actor == "agent" else None,
            "action": action, "result": result, "screenshot": f"screenshots/{index}.png" if shot else None}  # fmt: skip


STEPS = [
    _step(0, {"name": "Launch", "app": "Settings"}),
    _step(1, {"name": "Swipe", "start": [500, 800], "end": [500, 200]}),  # finger up: content scrolls down
    _step(2, {"name": "Long Press", "element": [100, 100]}),
    _step(3, {"name": "Type", "text": "hi"}),
    _step(4, {"name": "Take_over", "message": "log in"}),
    _step(5, {"name": "Tap", "element": [500, 500]}, actor="user"),  # a person's: the screen after it
    _step(6, {"name": "Back"}, actor="user"),
    _step(7, {"name": "Hand_back"}, actor="user", shot=False),
    _step(8, {"name": "Launch", "app": "Nope"}, result="unknown app 'Nope'"),  # rejected: nothing happened
    _step(9, {"name": "Home"}),
    _step(10, {"name": "Wait", "duration": "1 seconds"}),
    _step(11, {"name": "finish", "message": "done"}),
]


def _zip(path: Path, steps: list[dict] = STEPS) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("task.json", json.dumps({"id": str(TASK_ID), "instruction": "Log in and go home"}))
        for step in steps:
            if step["screenshot"]:
                archive.writestr(step["screenshot"], _image(step["index"] * 20))
        archive.writestr("steps.jsonl", "".join(json.dumps(s) + "\n" for s in steps))
    return path


def _shade(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").getpixel((5, 5))[0]


def test_screens_before_and_after_each_step(tmp_path: Path) -> None:
    with load_trajectory(_zip(tmp_path / "t.zip")) as trajectory:
        seen = [(s.before, s.after) for s in screens(trajectory)]
        assert trajectory.instruction == "Log in and go home" and trajectory.task_id == str(TASK_ID)
        assert [s.screen_size for s in trajectory.steps] == [(100, 200)] * 12  # from the images
    shot = "screenshots/{}.png".format
    assert seen[0] == (shot(0), shot(1))
    assert seen[3] == (shot(3), shot(4))  # the next step is the agent's own: what it saw
    assert seen[4] == (shot(4), None)  # a person's step comes next: the screen after is unknown
    assert seen[5] == (shot(4), shot(5))  # a person's first step starts from the agent's last screen
    assert seen[6] == (shot(5), shot(6))
    assert seen[7] == (shot(6), None)  # the hand-back has no screenshot
    assert seen[11] == (shot(11), None)


def test_episode_field_by_field(tmp_path: Path) -> None:
    with load_trajectory(_zip(tmp_path / "t.zip")) as trajectory:
        episode = to_episode(trajectory)
    f = episode.fields
    assert f["episode_id"] == int(TASK_ID.hex[:15], 16)
    assert f["goal"] == "Log in and go home"
    assert f["actions"] == [
        {"action_type": "open_app", "app_name": "Settings"},
        {"action_type": "scroll", "direction": "down"},
        {"action_type": "long_press", "x": 10, "y": 20},  # grid [100,100] on a 100x200 screen
        {"action_type": "input_text", "text": "hi"},
        {"action_type": "click", "x": 50, "y": 100},  # the person's tap
        {"action_type": "navigate_back"},
        {"action_type": "navigate_home"},
        {"action_type": "wait"},
    ]
    # One screenshot before each action and the last one after: steps 0-4, the tap's before (step 4's
    # screen), the Back's before (the tap's after, 5), Home's, Wait's, and the screen after Wait (11).
    shades = [_shade(episode.files[name]) for name in f["screenshots"]]
    assert shades == [i * 20 for i in (0, 1, 2, 3, 4, 5, 9, 10, 11)]
    assert f["screenshots"] == [f"screenshots/{n}.png" for n in range(9)]
    assert f["screenshot_widths"] == [100] * 9 and f["screenshot_heights"] == [200] * 9
    assert f["accessibility_trees"] == [None] * 9
    assert f["step_instructions"] == ["think 0", "think 1", "think 2", "think 3", "", "", "think 9", "think 10"]
    path = write_episode(episode, tmp_path / "ep")
    assert json.loads(path.read_text()) == f
    assert _shade((tmp_path / "ep" / "screenshots" / "8.png").read_bytes()) == 220


@pytest.mark.parametrize(
    ("start", "end", "direction"),
    [([500, 800], [500, 200], "down"), ([500, 200], [500, 800], "up"),
     ([800, 500], [200, 500], "right"), ([200, 500], [800, 500], "left")],
)  # fmt: skip
def test_a_swipe_scrolls_the_other_way(start: list[int], end: list[int], direction: str) -> None:
    line = {"index": 0, "action": {"name": "Swipe", "start": start, "end": end}, "result": "ok"}
    step = LoadedStep(0, line, (1000, 1000), {"name": "Swipe", "start": start, "end": end})
    assert android_control_action(step) == {"action_type": "scroll", "direction": direction}


def test_what_is_not_a_trajectory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(InvalidTrajectory, match="neither a zip nor a folder"):
        load_trajectory(tmp_path / "junk.zip")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("task.json", "{}")
    with pytest.raises(InvalidTrajectory, match=r"holds steps\.jsonl"):
        load_trajectory(tmp_path / "empty.zip")
    with pytest.raises(InvalidTrajectory, match="no trajectory there"):
        load_trajectory(tmp_path)
    escaping = [{"index": 0, "action": None, "result": "ok", "screenshot": "../../etc/passwd"}]
    with pytest.raises(InvalidTrajectory, match="outside the trajectory"):
        load_trajectory(_zip(tmp_path / "bad.zip", escaping))


def test_screen_distance_ignores_jpeg_noise_and_sees_a_switch() -> None:
    screen = Image.new("RGB", (1080, 2400), "white")
    for y in range(300, 2400, 180):  # rows of text-like dark bars
        screen.paste((40, 40, 40), (60, y, 700, y + 40))
    noisy = Image.open(io.BytesIO(_jpeg(screen)))
    assert screen_distance(screen, noisy) < 0.1
    switched = screen.copy()
    switched.paste((30, 110, 230), (880, 330, 1000, 400))  # a switch-sized patch turns blue
    assert screen_distance(screen, switched) > 0.3
    clock = screen.copy()
    clock.paste((0, 0, 0), (40, 10, 200, 60))  # the status bar changes: not the app's screen
    assert screen_distance(screen, clock) == 0.0


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def test_the_commands_convert_a_zip_and_refuse_what_is_not_a_trajectory(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.processes import REPO

    def cli(*words: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", *words], cwd=REPO, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    done = cli("android-control", str(_zip(tmp_path / "t.zip")), "--out", str(tmp_path / "ep"), "--episode-id", "3")
    assert done.returncode == 0, done.stderr
    assert "8 actions, 9 screenshots" in done.stdout
    assert json.loads((tmp_path / "ep" / "episode.json").read_text())["episode_id"] == 3
    refused = cli("replay", str(tmp_path / "missing"), "--device", "127.0.0.1:1")
    assert refused.returncode == 2 and "no trajectory there" in refused.stderr
