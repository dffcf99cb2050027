"""Export → replay through the API: a task run by the fleet (real API, worker process, pooled virtual
phone, a model server replaying the reference model's own answers to this task — scripted, so
no OCR to wait for), its trajectory downloaded as the API's zip (``GET /api/v1/tasks/{id}/trajectory``)
and replayed with ``phonefleet replay`` on the phone the pool reset meanwhile (a fresh phone): every
screen matches and the phone ends in the recorded final state, read from the phone itself.
(``tests/worker/agent/test_replay.py`` replays a ``phonefleet run`` folder and checks divergence.)"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.agent.test_replay import TASK, _cli
from tests.worker.runtask.conftest import Api, Pool, StartWorker

# What the reference model answers to TASK on a fresh phone (the switch's place on the 0–1000 grid).
REPLIES = ['do(action="Launch", app="Settings")', 'do(action="Tap", element=[855,165])',
           'finish(message="Turned Wi-Fi off.")']  # fmt: skip


def test_an_exported_trajectory_replays_to_the_same_final_state_on_a_fresh_phone(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    assert pool.shell("settings get global wifi_on").strip() == "1"  # on, as a phone starts
    with serve(ModelServer(*(Reply(r) for r in REPLIES))) as model:
        start_worker(model.base_url)
        task = api.submit(TASK, timeout_s=120, max_steps=8)
        done = api.wait_status(task["id"], ("succeeded",), timeout=90)
    assert pool.shell("settings get global wifi_on").strip() == "0"  # what the agent did

    answer = api.http.get(f"/api/v1/tasks/{task['id']}/trajectory")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip", answer.text[:200]
    exported = tmp_path / "trajectory.zip"
    exported.write_bytes(answer.content)
    with zipfile.ZipFile(exported) as archive:
        lines = [json.loads(line) for line in archive.read("steps.jsonl").decode().splitlines()]
    acting = [line for line in lines if line["action"]["name"] != "finish"]
    assert acting and len(lines) == done["result"]["steps"], lines

    # The pool resets the phone it got back: a fresh phone again, Wi-Fi on.
    pool.settle()
    assert pool.shell("settings get global wifi_on").strip() == "1"
    serial, adb_port = pool.devices()[0].serial, pool.manager.provider.config.adb_port  # type: ignore[attr-defined]
    replayed = _cli("replay", str(exported), "--device", serial, "--adb-port", str(adb_port), "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    outcome = json.loads(replayed.stdout)
    assert outcome["reproduced"] and outcome["steps_run"] == len(acting), outcome
    assert outcome["checked"] == len(acting) + 1  # the start screen, and one after each action
    assert pool.shell("settings get global wifi_on").strip() == "0"  # the recorded final state, reproduced
