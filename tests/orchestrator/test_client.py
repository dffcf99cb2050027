"""``orchestrator.client`` and ``phonefleet task`` against the real API (no worker: tasks stay queued)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from orchestrator.client import PhoneFleetAPIError, PhoneFleetClient, TaskWaitTimeout
from orchestrator.db import TaskStatus
from orchestrator.settings import AuthSettings
from tests.asgi import closed_port
from tests.orchestrator.api.test_steps import JPEG, add_steps
from tests.orchestrator.api.test_tasks import add_tasks
from tests.orchestrator.conftest import Api, StartApi


def test_submit_get_list_cancel_wait(api: Api) -> None:
    caller = api.caller()
    with PhoneFleetClient(api.url, caller.key) as pf:
        submitted = [pf.submit(f"task {i}", max_steps=5, metadata={"i": i}, max_tries=2) for i in range(5)]
        assert [t["status"] for t in submitted] == ["queued"] * 5
        first = pf.get(submitted[0]["id"])
        assert (first["instruction"], first["max_steps"], first["metadata"]) == ("task 0", 5, {"i": 0})
        assert first["max_tries"] == 2

        # Three pages of two: every task once, newest first.
        listed = [t["id"] for t in pf.list(limit=2)]
        assert listed == [t["id"] for t in reversed(submitted)]

        cancelled = pf.cancel(submitted[1]["id"])
        assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "cancelled")
        assert [t["id"] for t in pf.list(status="cancelled")] == [submitted[1]["id"]]
        assert pf.wait(submitted[1]["id"], timeout_s=5)["status"] == "cancelled"

        with pytest.raises(PhoneFleetAPIError) as again:
            pf.cancel(submitted[1]["id"])
        assert (again.value.status, again.value.code) == (409, "invalid_transition")

        started = time.monotonic()
        with pytest.raises(TaskWaitTimeout) as timeout:
            pf.wait(submitted[0]["id"], timeout_s=0.3, poll_s=0.05)
        assert isinstance(timeout.value, TimeoutError) and timeout.value.status == "queued"
        # it gave up by its own 0.3 s deadline (30 s only guards against a wait that never ends)
        assert "queued" in str(timeout.value) and time.monotonic() - started < 30


def test_wait_returns_a_finished_task_and_steps_and_screenshots_are_read(api: Api) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.SUCCEEDED}])
    shot = Path("screenshots") / str(task_id) / "0001.jpg"
    (api.settings.data_dir / shot).parent.mkdir(parents=True)
    (api.settings.data_dir / shot).write_bytes(JPEG)
    add_steps(api.db_url, task_id, 120, {1: str(shot)})  # more than one page of 100
    with PhoneFleetClient(api.url, caller.key) as pf:
        assert pf.wait(str(task_id), timeout_s=5)["status"] == "succeeded"
        assert [s["index"] for s in pf.steps(str(task_id))] == list(range(120))
        assert pf.screenshot(str(task_id), 1) == JPEG
        with pytest.raises(PhoneFleetAPIError) as missing:
            pf.screenshot(str(task_id), 0)
        assert (missing.value.status, missing.value.code) == (404, "screenshot_not_found")


def test_same_idempotency_key_gives_the_same_task(api: Api) -> None:
    caller = api.caller()
    key = f"ops-{uuid.uuid4().hex}"
    with PhoneFleetClient(api.url, caller.key) as pf:
        a = pf.submit("Open Settings", idempotency_key=key)
        b = pf.submit("Open Settings", idempotency_key=key)
        assert a["id"] == b["id"]
        with pytest.raises(PhoneFleetAPIError) as conflict:
            pf.submit("Something else", idempotency_key=key)
        assert (conflict.value.status, conflict.value.code) == (409, "idempotency_conflict")
        # Without a key each submit is its own task (the client makes a fresh key per call).
        assert pf.submit("x")["id"] != pf.submit("x")["id"]
    assert len(api.queued_messages()) == 3


def test_api_errors_carry_the_servers_code_and_message(api: Api) -> None:
    owner, other = api.caller(), api.caller()
    with PhoneFleetClient(api.url, owner.key) as pf:
        task = pf.submit("mine")
    with PhoneFleetClient(api.url, "pf_00000000_nope") as pf, pytest.raises(PhoneFleetAPIError) as bad:
        pf.get(task["id"])
    assert (bad.value.status, bad.value.code) == (401, "unauthenticated") and bad.value.message
    with PhoneFleetClient(api.url, other.key) as pf:
        for call in (pf.get, pf.cancel):
            with pytest.raises(PhoneFleetAPIError) as hidden:
                call(task["id"])
            assert (hidden.value.status, hidden.value.code) == (404, "task_not_found")
            assert task["id"] in hidden.value.message
        with pytest.raises(PhoneFleetAPIError) as invalid:
            pf.submit("x", max_steps=1000)
        assert (invalid.value.status, invalid.value.code) == (422, "validation_error")
        assert invalid.value.details


def test_submit_waits_out_429_retry_after(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, auth=AuthSettings(rate_limit_per_s=2, rate_limit_burst=1))
    caller = api.caller()
    assert caller.http.post("/api/v1/tasks", json={"instruction": "uses the burst"}).status_code == 202
    with PhoneFleetClient(api.url, caller.key) as pf:
        started = time.monotonic()
        task = pf.submit("after the 429")
        assert task["status"] == "queued" and time.monotonic() - started >= 0.9
    with PhoneFleetClient(api.url, caller.key, max_retries=0) as pf:
        caller.http.post("/api/v1/tasks", json={"instruction": "uses the burst again"})
        with pytest.raises(PhoneFleetAPIError) as limited:
            pf.submit("no retries")
        assert (limited.value.status, limited.value.code) == (429, "rate_limited")
        assert limited.value.retry_after_s is not None and limited.value.retry_after_s >= 1


def test_submit_retries_a_connection_error_with_the_same_idempotency_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(seen) == 2:
            return httpx.Response(503, headers={"Retry-After": "0"},
                                  json={"error": "database_unavailable", "message": "busy"})  # fmt: skip
        return httpx.Response(202, json={"id": "t1", "status": "queued"})

    monkeypatch.setattr("orchestrator.client.time.sleep", lambda s: None)
    with PhoneFleetClient(
        "http://phonefleet.invalid", "pf_x_y", transport=httpx.MockTransport(handler)
    ) as pf:
        assert pf.submit("x")["id"] == "t1"
    assert len(seen) == 3 and len(set(seen)) == 1


def test_cancel_does_not_retry_a_connection_error() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    pf = PhoneFleetClient("http://phonefleet.invalid", "pf_x_y", transport=httpx.MockTransport(handler))
    with pf, pytest.raises(httpx.ConnectError):
        pf.cancel("t1")
    assert len(calls) == 1


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", "task", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_phonefleet_task_cli(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    # A data directory of its own: no URL or key of a `phonefleet up` on this machine is picked up.
    base = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    base["PHONEFLEET_DATA_DIR"] = str(tmp_path / "no-up-here")
    env = base | {"PHONEFLEET_URL": api.url, "PHONEFLEET_API_KEY": caller.key}

    # Flags instead of the environment.
    r = _cli("submit", "Open Settings", "--max-steps", "7", "--timeout", "60", "--json",
             "--url", api.url, "--api-key", caller.key, env=base)  # fmt: skip
    assert r.returncode == 0, r.stderr
    task = json.loads(r.stdout)
    assert (task["status"], task["max_steps"], task["timeout_s"]) == ("queued", 7, 60)

    r = _cli("status", task["id"], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{task['id']}  queued  ") and '"Open Settings"' in r.stdout
    assert "  waiting=queued  " in r.stdout  # why it is not moving

    r = _cli("cancel", task["id"], "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "cancelled"

    r = _cli("wait", task["id"], "--timeout", "5", env=env)  # a final status, but not success
    assert r.returncode == 1 and "cancelled" in r.stdout

    r = _cli("list", "--status", "cancelled", "--json", env=env)
    assert r.returncode == 0 and [json.loads(line)["id"] for line in r.stdout.splitlines()] == [task["id"]]

    r = _cli("cancel", task["id"], env=env)  # already ended
    assert r.returncode == 1 and "409 invalid_transition" in r.stderr

    r = _cli("status", task["id"], "--api-key", "pf_00000000_nope", env=env)
    assert r.returncode == 1 and "401 unauthenticated" in r.stderr and r.stdout == ""

    r = _cli("status", task["id"], env=base | {"PHONEFLEET_URL": f"http://127.0.0.1:{closed_port()}"})
    assert r.returncode == 2 and "PHONEFLEET_API_KEY" in r.stderr  # no key: usage

    r = _cli("status", task["id"], "--url", f"http://127.0.0.1:{closed_port()}", env=env)
    assert r.returncode == 1 and "cannot reach" in r.stderr

    r = _cli("submit", "never picked up", "--wait", "--wait-timeout", "0.5", "--poll", "0.1", env=env)
    assert r.returncode == 1 and "still queued" in r.stderr

    r = _cli("frobnicate", env=env)
    assert r.returncode == 2
