"""A worker's log lines say which task, which device and why: a phone that dies under a running task,
read back from the worker's own (json) log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any

from device_pool.providers import SimProvider
from tests.conditions import port_open, wait_until
from tests.worker.agent.model_servers import Call, ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker, Worker


@dataclass
class Gated:
    """A model reply held until the test opens the gate (it kills the phone first)."""

    gate: threading.Event
    then: Reply

    async def respond(self, server: ModelServer, call: Call) -> None:
        await asyncio.to_thread(self.gate.wait, 60)
        await self.then.respond(server, call)


def _records(worker: Worker) -> list[dict[str, Any]]:
    """The worker's log records (Celery's banner, printed rather than logged, is left out)."""
    return [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]


def test_a_failed_phone_is_logged_with_the_task_the_device_and_the_reason(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    gate = threading.Event()
    (device,) = pool.devices()
    provider = pool.manager.provider
    assert isinstance(provider, SimProvider)
    pid, port = provider.pid(device.serial), int(device.serial.rsplit(":", 1)[1])
    assert pid is not None
    with serve(ModelServer(Gated(gate, Reply('do(action="Tap", element=[500,500])')))) as model:
        # One attempt: the phone's failure ends the task (no retry on another phone; test_retries.py).
        worker = start_worker(
            model.base_url, PHONEFLEET_LOG_FORMAT="json", PHONEFLEET_TASKS__MAX_INFRA_ATTEMPTS="1"
        )
        task = api.submit("Open Settings and turn on Wi-Fi", timeout_s=120)
        api.wait_status(task["id"], ("running",), timeout=30)
        wait_until(lambda: model.requests, timeout=30, what="the agent asked the model")
        # The phone dies while the model thinks: the agent's tap goes to a phone that is gone.
        os.kill(pid, signal.SIGKILL)  # the phone process this test's pool started
        wait_until(lambda: not port_open("127.0.0.1", port), timeout=10, what="the phone's port closed")
        gate.set()
        done = api.wait_status(task["id"], ("failed",), timeout=60)
    assert done["reason"] == "device_error", done

    def finished() -> dict[str, Any] | None:
        return next((r for r in _records(worker) if r["message"] == "task finished"), None)

    line = wait_until(finished, timeout=10, what="the worker logged the task's end")
    assert line["level"] == "INFO"
    assert (line["task_id"], line["device_id"], line["status"], line["reason"]) == (
        task["id"], str(device.id), "failed", "device_error",
    )  # fmt: skip
    # The agent's own line for the failure carries the same task and device, and the error itself.
    (failed,) = [r for r in _records(worker) if r["message"].startswith("device failed:")]
    assert (failed["level"], failed["task_id"], failed["device_id"]) == (
        "WARNING",
        task["id"],
        str(device.id),
    )
    assert device.serial in failed["message"]
