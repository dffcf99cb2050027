"""``phonefleet up`` as a user runs it: one command, embedded defaults, a task from submit to done."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from orchestrator.cli.port_file import read_port_file
from tests.conditions import port_open, reserved_ports, wait_until
from tests.processes import REPO, adb_binary, stop_process


def test_up_runs_the_whole_product_on_sqlite_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # The API and the model on ports the OS chooses (port 0); adb and the pool's phones take numbers,
    # reserved for them while the test runs.
    with reserved_ports(1) as adb_port, reserved_ports(2) as phone_port:
        run_up(tmp_path, adb_port, phone_port)


def run_up(tmp_path: Path, adb_port: int, phone_port: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env.update(
        HOME=str(tmp_path / "home"),  # the adb server keeps its key there
        PHONEFLEET_DATA_DIR=str(tmp_path / "data"),
        PHONEFLEET_API__PORT="0",
        PHONEFLEET_MODEL__BASE_URL="http://127.0.0.1:0/v1",
        PHONEFLEET_POOL__BASE_PORT=str(phone_port),
        PHONEFLEET_POOL__COUNT="1",
    )
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "up", "--adb-port", str(adb_port), "--concurrency", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: proc.poll() is not None or any("PhoneFleet is running" in line for line in lines),
            timeout=120, what="phonefleet up ready",
        )  # fmt: skip
        assert proc.poll() is None, "".join(lines)
        key = next(m.group(1) for line in lines if (m := re.match(r"Admin API key: (\S+)", line)))
        url = next(m.group(1) for line in lines if (m := re.search(r"PhoneFleet is running at (\S+)", line)))
        api_port = int(url.rsplit(":", 1)[1])
        model_port = read_port_file(tmp_path / "data" / "logs" / "reference-model.port")
        assert api_port and model_port, (url, model_port)
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
        created = api.post(
            "/api/v1/tasks", json={"instruction": "Open Settings and turn on Wi-Fi", "timeout_s": 120}
        )
        assert created.status_code == 202, created.text
        task_id = created.json()["id"]
        done = wait_until(
            lambda: (t := api.get(f"/api/v1/tasks/{task_id}").json())["status"]
            in ("succeeded", "failed", "cancelled", "timed_out") and t,
            timeout=120, interval=0.5, what="the task finished",
        )  # fmt: skip
        assert done["status"] == "succeeded", (done, "".join(lines))
        steps = api.get(f"/api/v1/tasks/{task_id}/steps").json()
        assert steps["items"], steps
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(lines)
        for port in (api_port, model_port, phone_port):
            assert not port_open("127.0.0.1", port), f"port {port} still open after Ctrl-C"
    finally:
        stop_process(proc)
        binary = adb_binary()
        if binary:  # the pool started an adb server on our private port; stop it the way adb does
            subprocess.run(
                [binary, "-P", str(adb_port), "kill-server"], env=env, capture_output=True, timeout=30
            )
