"""``phonefleet up`` as a user runs it: one command, embedded defaults, a task from submit to done with
``phonefleet task`` (which finds the API and key as ``up`` left them), a Python WebRTC viewer of an
idle phone, and Ctrl-C stopping everything ``up`` started — its adb server included."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from device_pool.pool.adb_supervisor import adb_listeners
from orchestrator.cli.port_file import read_port_file
from orchestrator.cli.up import URL_FILE
from orchestrator.live.ice import pin_host_addresses
from tests.conditions import port_open, reserved_ports, wait_until
from tests.orchestrator.live.peer import watch_once
from tests.processes import REPO, adb_binary, stop_process

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


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
        # ICE on loopback for the viewer below (another process: it pins its own side the same way).
        PHONEFLEET_WEBRTC__HOST_ADDRESSES='["127.0.0.1"]',
        PHONEFLEET_WEBRTC__MAX_WIDTH="360",
    )
    (tmp_path / "home").mkdir()
    proc = subprocess.Popen(
        # One more reference model, as the endpoint "tars" speaking UI-TARS (how an eval registers "scripted").
        [sys.executable, "-m", "orchestrator.cli", "up", "--adb-port", str(adb_port), "--concurrency", "1",
         "--reference-endpoint", "tars,family=ui-tars"],
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
        data = tmp_path / "data"
        assert (data / URL_FILE).read_text().strip() == url  # for phonefleet task
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"})
        # The vault works with no setup: up made its key in the data directory at start.
        assert (data / "vault.key").stat().st_mode & 0o777 == 0o600
        stored = api.post("/api/v1/secrets", json={"name": "up_secret", "value": "made-at-start"})
        assert stored.status_code == 201 and "made-at-start" not in stored.text, stored.text

        # `phonefleet task` with neither PHONEFLEET_URL nor a key: both as up left them.
        task_env = {k: v for k, v in env.items() if k not in ("PHONEFLEET_URL", "PHONEFLEET_API_KEY")}
        cli = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "task", "submit", "Open Settings and turn on Wi-Fi",
             "--timeout", "120", "--wait"],
            cwd=REPO, env=task_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert cli.returncode == 0, (cli.stdout, cli.stderr, "".join(lines))
        task_id, status = cli.stdout.split()[:2]
        assert status == "succeeded", cli.stdout
        assert "step 0: " in cli.stderr and "→ succeeded" in cli.stderr, cli.stderr
        steps = api.get(f"/api/v1/tasks/{task_id}/steps").json()
        assert steps["items"], steps

        # The endpoints up defined: a task naming "tars" runs on it, in UI-TARS's own words.
        models = api.get("/api/v1/models").json()["items"]
        assert [(m["name"], m["family"]) for m in models] == [("default", "autoglm"), ("tars", "ui-tars")], (
            models
        )
        tars_port = read_port_file(data / "logs" / "reference-model-tars.port")
        task = api.post(
            "/api/v1/tasks", json={"instruction": "Open Settings", "model": "tars", "timeout_s": 120}
        )
        assert task.status_code == 202, task.text
        done = wait_until(
            lambda: (t := api.get(f"/api/v1/tasks/{task.json()['id']}").json())["status"] in TERMINAL and t,
            timeout=150, what="the task on the endpoint tars ends",
        )  # fmt: skip
        assert done["status"] == "succeeded", done
        tars_steps = api.get(f"/api/v1/tasks/{done['id']}/steps").json()["items"]
        assert tars_steps[0]["action_text"].startswith("open_app(app_name="), tars_steps

        # A Python viewer (aiortc, in this process) of the phone, idle and still again after its reset.
        device_id = wait_until(
            lambda: next((d["id"] for d in api.get("/api/v1/devices").json()["items"] if d["state"] == "idle"), None),
            timeout=60, what="the phone idle again",
        )  # fmt: skip
        first_frame_s, hello = asyncio.run(_watch(url, key, device_id))
        assert first_frame_s is not None, "no decoded frame of a still phone within 20 s"
        print(f"first decoded frame of a still phone after {first_frame_s:.2f} s")
        assert hello["control"] is False
        assert hello["reason"] == "view only: the phone is idle (not leased to you)", hello

        _swap_in_an_adb_daemon(data, adb_port, env)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0, "".join(lines)
        for port in (api_port, model_port, tars_port, phone_port, adb_port):
            assert not port_open("127.0.0.1", port), f"port {port} still open after Ctrl-C"
        # Nothing up started runs on: every child (and theirs) inherited up's data directory.
        wait_until(lambda: not _started_by(data), timeout=10, what="every process up started gone")
        assert not (data / URL_FILE).exists()
    finally:
        stop_process(proc)
        binary = adb_binary()
        if binary:  # the pool started an adb server on our private port; stop it the way adb does
            subprocess.run(
                [binary, "-P", str(adb_port), "kill-server"], env=env, capture_output=True, timeout=30
            )


async def _watch(url: str, key: str, device_id: str) -> tuple[float | None, dict]:
    """Connect a viewer (ICE pinned to loopback); the seconds until its first decoded frame, and its hello."""
    pin_host_addresses(["127.0.0.1"])
    try:
        # A deadline, not the bound: the bound (1 s) is measured by bench/bench_live.py.
        return await watch_once(url, key, f"/api/v1/devices/{device_id}/webrtc", timeout=20)
    finally:
        pin_host_addresses([])


def _started_by(data: Path) -> list[int]:
    """Pids of processes whose environment names ``data`` as their data directory (up's children)."""
    marker = f"PHONEFLEET_DATA_DIR={data}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _swap_in_an_adb_daemon(data: Path, adb_port: int, env: dict[str, str]) -> None:
    """Replace the pool's adb server by a daemon (``adb start-server``) the pool did not start, as a
    worker does when it finds no server — the pool adopts it and would leave it running on exit.
    The pool is paused meanwhile, so the swap cannot race its supervisor's restart."""
    [pool] = [
        pid for pid in _started_by(data) if b"pool" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    ]
    [server] = adb_listeners(adb_port)
    os.kill(pool, signal.SIGSTOP)
    try:
        os.kill(server, signal.SIGKILL)
        wait_until(
            lambda: not port_open("127.0.0.1", adb_port), timeout=10, what="the pool's adb server gone"
        )
        binary = adb_binary()
        assert binary
        subprocess.run([binary, "-P", str(adb_port), "start-server"], env=env, check=True, capture_output=True,
                       timeout=30)  # fmt: skip
        assert adb_listeners(adb_port) and server not in adb_listeners(adb_port)
    finally:
        os.kill(pool, signal.SIGCONT)


def test_reference_endpoints_may_plan_ground_and_pair() -> None:
    """``--reference-endpoint`` specs as the endpoints up registers (nothing started)."""
    from orchestrator.cli.up import _extra_json, _reference_endpoint
    from orchestrator.settings import ModelSettings

    specs = ["plan,role=planner", "tars,family=ui-tars,role=grounder", "pair,planner=plan,grounder=tars"]
    extra = [_reference_endpoint(spec) for spec in specs]
    endpoints = [_extra_json(e, "http://127.0.0.1:1/v1") for e in extra]
    assert endpoints[2] == {"name": "pair", "planner": "plan", "grounder": "tars"}
    assert ModelSettings(endpoints=endpoints).by_name("pair").is_pair
    with pytest.raises(ValueError, match="role is one of agent, planner, grounder"):
        _reference_endpoint("x,role=boss")
    with pytest.raises(ValueError, match="names both its planner and its grounder"):
        ModelSettings(endpoints=[_extra_json(_reference_endpoint("half,planner=plan"), ""), endpoints[0]])
