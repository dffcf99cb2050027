"""Trajectory → replay → AndroidControl on real virtual phones: a Wi-Fi-off task run by the reference model
through ``phonefleet run``, its trajectory replayed with ``phonefleet replay`` on a fresh phone (its
state checked over adb), on a phone changed on purpose (the divergent step reported), and converted
to an AndroidControl episode checked field by field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from orchestrator.services.android_control import to_episode, write_episode
from orchestrator.services.trajectories import load_trajectory
from tests.aio import run
from tests.conftest import Connect
from tests.processes import REPO, AdbServer, ReferenceModel, start_sim

TASK = "Open Settings and turn off Wi-Fi"


def _cli(*words: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *words], cwd=REPO, env=os.environ.copy(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _wifi(device: AdbDevice) -> str:
    return run(device.shell("settings get global wifi_on")).stdout.strip()


@pytest.fixture(scope="module")
def phones(tmp_path_factory: pytest.TempPathFactory):
    """Three fresh virtual phones, one to record on, one to replay on, one changed: each in a process of
    its own, all from the same seed (one process would seed its phones apart: other wallpapers)."""
    sims = []
    try:
        for _ in range(3):
            sims.append(start_sim(tmp_path_factory.mktemp("replay-sim"), count=1, seed=0))
        yield sims
    finally:
        for sim in sims:
            sim.stop()


def test_a_replayed_trajectory_reproduces_the_final_state_and_a_changed_phone_diverges(
    phones, connect: Connect, adb_server: AdbServer, reference_model: ReferenceModel, tmp_path: Path
) -> None:
    recorder, fresh, changed = (connect(sim) for sim in phones)
    assert _wifi(recorder) == _wifi(fresh) == _wifi(changed) == "1"  # on, as a phone starts
    out = tmp_path / "rec"
    done = _cli("run", TASK, "--device", recorder.serial, "--adb-port", str(adb_server.port),
                "--model-url", reference_model.base_url, "--max-steps", "8", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert _wifi(recorder) == "0"
    lines = [json.loads(line) for line in (out / "trajectory.jsonl").read_text().splitlines()]
    acting = [line for line in lines if line["action"]["name"] != "finish"]
    assert acting and all(line["instruction"] == TASK and line["screen_size"] == [1080, 2400] for line in lines)

    # The same actions on a fresh phone, no model: every screen matches, and Wi-Fi is off there too.
    replayed = _cli("replay", str(out), "--device", fresh.serial, "--adb-port", str(adb_server.port), "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    outcome = json.loads(replayed.stdout)
    assert outcome["reproduced"] and outcome["steps_run"] == len(acting), outcome
    assert outcome["checked"] == len(acting) + 1  # the start screen, and one after each action
    # Far below the threshold: the same screen against its JPEG differs only by noise.
    assert max(distance for *_, distance in outcome["distances"]) < 0.05, outcome
    print("replayed screen distances:", outcome["distances"])
    assert _wifi(fresh) == "0"

    # A phone whose Wi-Fi is already off: the tap turns it on, and replay says where it parted.
    run(changed.shell("settings put global wifi_on 0", check=True))
    diverged = _cli("replay", str(out), "--device", changed.serial, "--adb-port", str(adb_server.port), "--json")
    assert diverged.returncode == 1, diverged.stdout + diverged.stderr
    report = json.loads(diverged.stdout)
    toggle = next(line["index"] for line in acting if line["action"]["name"] == "Tap")
    assert not report["reproduced"] and report["phase"] == "after", report
    assert report["diverged_at"] in [line["index"] for line in acting] and report["diverged_at"] <= toggle
    assert report["distance"] > 0.1
    print("the changed phone's divergence:", report["diverged_at"], report["distance"])

    # The same trajectory as an AndroidControl episode, field by field.
    with load_trajectory(out) as trajectory:
        episode = to_episode(trajectory, episode_id=7)
    fields = episode.fields
    assert fields["episode_id"] == 7 and fields["goal"] == TASK
    assert len(fields["screenshots"]) == len(fields["actions"]) + 1 == len(acting) + 1
    assert fields["screenshot_widths"] == [1080] * len(fields["screenshots"])
    assert fields["screenshot_heights"] == [2400] * len(fields["screenshots"])
    assert fields["accessibility_trees"] == [None] * len(fields["screenshots"])  # no UI dump taken
    assert fields["step_instructions"] == [" ".join(line["thinking"].split()) for line in acting]
    for line, action in zip(acting, fields["actions"], strict=True):
        if line["action"]["name"] == "Launch":
            assert action == {"action_type": "open_app", "app_name": line["action"]["app"]}
        else:
            assert line["action"]["name"] == "Tap"
            x, y = line["action"]["element"]
            assert action == {"action_type": "click", "x": round(x / 1000 * 1080), "y": round(y / 1000 * 2400)}
    path = write_episode(episode, tmp_path / "episode")
    assert json.loads(path.read_text()) == fields
    assert (tmp_path / "episode" / "screenshots" / "0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
