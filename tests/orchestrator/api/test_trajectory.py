"""``GET /api/v1/tasks/{id}/trajectory`` over real HTTP, ``download_trajectory`` and ``phonefleet task
trajectory`` (steps and screenshot files written as a worker writes them), and the zip stream itself."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orchestrator.client import PhoneFleetAPIError, PhoneFleetClient
from orchestrator.db import TaskStatus
from orchestrator.services.trajectory_zip import TrajectoryStep, trajectory_zip
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.api.test_steps import JPEG, add_steps
from tests.orchestrator.api.test_tasks import add_tasks


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


PNG = _png(100, 200)  # a real image: the zip reads the screen's size from it


def _shot(api: Api, task_id: uuid.UUID, name: str, data: bytes) -> str:
    """A screenshot file under data_dir, as the worker writes them; its path relative to data_dir."""
    relative = Path("tasks") / str(task_id) / name
    (api.settings.data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
    (api.settings.data_dir / relative).write_bytes(data)
    return str(relative)


def _unzip(content: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None  # every entry's CRC checks out
    return archive


def _lines(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read("steps.jsonl").decode().splitlines()]


def test_trajectory_zip_holds_the_task_its_steps_and_screenshots(any_db_api: Api, tmp_path: Path) -> None:
    api = any_db_api
    caller = api.caller()
    result = {"steps": 5, "usage": {"prompt_tokens": 10, "completion_tokens": 2}}
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.SUCCEEDED, "result": result}])
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not yours")
    shots = {
        0: _shot(api, task_id, "step-000.jpg", JPEG),
        2: _shot(api, task_id, "step-002.png", PNG),
        3: f"tasks/{task_id}/step-003.jpg",  # recorded, but the file is gone
        4: os.path.relpath(secret, api.settings.data_dir),  # a path leaving data_dir: never served
    }
    add_steps(api.db_url, task_id, 5, shots)

    r = caller.http.get(f"/api/v1/tasks/{task_id}/trajectory")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'attachment; filename="task-{task_id}.zip"'
    assert "content-length" not in r.headers  # streamed, not built first
    archive = _unzip(r.content)
    assert archive.namelist() == ["task.json", "screenshots/0.jpg", "screenshots/2.png", "steps.jsonl"]
    assert b"not yours" not in r.content

    # task.json is the task as the API shows it, result included.
    task = json.loads(archive.read("task.json"))
    assert task == caller.http.get(f"/api/v1/tasks/{task_id}").json() and task["result"] == result

    # steps.jsonl: each step as the steps API shows it, the screenshot as a path inside the zip.
    api_steps = caller.http.get(f"/api/v1/tasks/{task_id}/steps").json()["items"]
    # Plus the keys for training and replay: the screen's size from the latest readable screenshot (step 0's JPEG
    # is not one; step 2's PNG is 100x200, and steps 3 and 4 acted on the same screen), the action
    # in pixels of it, the task's instruction on every line; no UI dump taken, no score.
    sizes = {2: [100, 200], 3: [100, 200], 4: [100, 200]}
    expected = [
        {k: v for k, v in s.items() if k != "screenshot_url"}
        | {"screenshot": {0: "screenshots/0.jpg", 2: "screenshots/2.png"}.get(s["index"])}
        | {"instruction": task["instruction"], "screen_size": sizes.get(s["index"]), "ui_dump": None,
           "score": None,
           "action_px": {**s["action"], "element": [50, 100]} if s["index"] in sizes else None}
        for s in api_steps
    ]  # fmt: skip
    assert _lines(archive) == expected
    assert archive.read("screenshots/0.jpg") == JPEG and archive.read("screenshots/2.png") == PNG

    # Info-ZIP reads the streamed format (sizes in data descriptors) too.
    if shutil.which("unzip"):
        path = tmp_path / "t.zip"
        path.write_bytes(r.content)
        check = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0 and "No errors detected" in check.stdout, check.stdout + check.stderr


def test_a_running_tasks_trajectory_is_a_snapshot_that_grows(api: Api) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.RUNNING}])
    url = f"/api/v1/tasks/{task_id}/trajectory"

    empty = _unzip(caller.http.get(url).content)
    assert empty.namelist() == ["task.json", "steps.jsonl"] and empty.read("steps.jsonl") == b""
    assert json.loads(empty.read("task.json"))["status"] == "running"

    add_steps(api.db_url, task_id, 2, {1: _shot(api, task_id, "step-001.jpg", JPEG)})
    later = _unzip(caller.http.get(url).content)
    assert [line["index"] for line in _lines(later)] == [0, 1]
    assert [line["screenshot"] for line in _lines(later)] == [None, "screenshots/1.jpg"]


def test_another_tenants_trajectory_is_not_found(api: Api) -> None:
    owner, other = api.caller(), api.caller()
    [task_id] = add_tasks(api.db_url, owner.tenant_id, [{}])
    for caller, tid in [(other, task_id), (owner, uuid.uuid4())]:
        r = caller.http.get(f"/api/v1/tasks/{tid}/trajectory")
        assert r.status_code == 404 and r.json()["error"] == "task_not_found", r.text
    assert api.client().get(f"/api/v1/tasks/{task_id}/trajectory").status_code == 401


def test_client_and_cli_download_the_trajectory(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.SUCCEEDED}])
    add_steps(api.db_url, task_id, 3, {0: _shot(api, task_id, "step-000.jpg", JPEG)})

    with PhoneFleetClient(api.url, caller.key) as pf:
        saved = pf.download_trajectory(str(task_id), tmp_path / "client.zip")
        assert saved == tmp_path / "client.zip"
        assert _unzip(saved.read_bytes()).read("screenshots/0.jpg") == JPEG
        with pytest.raises(PhoneFleetAPIError) as missing:
            pf.download_trajectory(str(uuid.uuid4()), tmp_path / "missing.zip")
        assert (missing.value.status, missing.value.code) == (404, "task_not_found")
    assert not (tmp_path / "missing.zip").exists() and not (tmp_path / "missing.zip.part").exists()

    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env |= {"PHONEFLEET_URL": api.url, "PHONEFLEET_API_KEY": caller.key}
    cli = [sys.executable, "-m", "orchestrator.cli", "task", "trajectory"]
    out = tmp_path / "cli.zip"
    r = subprocess.run([*cli, str(task_id), "-o", str(out), "--json"], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"path": str(out), "bytes": out.stat().st_size}
    assert len(_lines(_unzip(out.read_bytes()))) == 3

    r = subprocess.run([*cli, str(task_id)], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0 and (tmp_path / f"task-{task_id}.zip").is_file(), r.stderr

    r = subprocess.run([*cli, str(uuid.uuid4()), "-o", str(tmp_path / "no.zip")], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 1 and "404 task_not_found" in r.stderr and not (tmp_path / "no.zip").exists()


def test_the_zip_is_streamed_a_screenshot_at_a_time(tmp_path: Path) -> None:
    # 24 screenshots of 256 KB (6 MB): no piece the generator hands on may hold more than about one.
    size = 256 * 1024
    steps = []
    for i in range(24):
        path = tmp_path / f"step-{i:03d}.jpg"
        path.write_bytes(os.urandom(size))
        steps.append(TrajectoryStep(i, {"index": i, "thinking": "x" * 1000}, path))
    pieces = list(trajectory_zip({"id": "t"}, steps))
    assert max(len(p) for p in pieces) < 2 * size, [len(p) for p in pieces]
    archive = _unzip(b"".join(pieces))
    assert len(archive.namelist()) == 26
    assert archive.read("screenshots/23.jpg") == (tmp_path / "step-023.jpg").read_bytes()
    assert _lines(archive)[5] == {
        "index": 5, "thinking": "x" * 1000, "screenshot": "screenshots/5.jpg", "instruction": None,
        "screen_size": None, "action_px": None, "ui_dump": None, "score": None,
    }  # fmt: skip
