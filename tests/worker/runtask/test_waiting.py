"""Why a task is not moving, as ``GET /api/v1/tasks/{id}`` says it (``waiting``) while a real worker
runs it: waiting for a device, for a failing model server, for a person; null once it moves again
and once it ended. Every change is in the task's events too."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from tests.conditions import wait_until
from tests.processes import ReferenceModel, start_reference_model
from tests.worker.agent.model_servers import Gate, ModelServer, Reply, Status, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker, people_script
from tests.worker.runtask.test_run_task import answer_over_http


def waits(api: Api, task_id: str, kind: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the task until its ``waiting`` is of ``kind``; the task as answered then."""

    def seen() -> dict[str, Any] | None:
        task = api.task(task_id)
        return task if (task["waiting"] or {}).get("kind") == kind else None

    return wait_until(seen, timeout=timeout, interval=0.05, what=f"task {task_id} waiting for {kind}")


def waiting_changes(api: Api, task_id: str) -> list[tuple[str, str | None]]:
    """(event type, waiting kind) of the task's events that carry ``waiting``, in order."""
    _, events, _ = api.rows(task_id)
    return [(e.type, (e.payload["waiting"] or {}).get("kind")) for e in events if "waiting" in e.payload]


def test_a_run_with_no_idle_device_says_no_device_then_moves(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    # The pool's only phone is held by someone else when the task is claimed.
    [phone] = pool.devices()
    held = pool.loop.call(pool.store.acquire(holder="someone-else", tenant_id=None, ttl_s=120))
    assert held is not None and held.device_id == phone.id
    with serve(ModelServer(Reply('finish(message="done")'))) as model:
        start_worker(model.base_url)
        task = api.submit("Open Settings", timeout_s=120)
        assert task["waiting"]["kind"] == "queued"
        waiting = waits(api, task["id"], "no_device")
        assert waiting["status"] == "leasing" and "no idle device" in waiting["waiting"]["message"]
        assert waiting["waiting"]["since"] >= task["created_at"]

        pool.loop.call(pool.store.release(held.lease_id, held.holder))
        pool.settle()  # reset, idle again: the waiting run takes it
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)
    assert done["waiting"] is None
    assert waiting_changes(api, task["id"]) == [
        ("task.created", "queued"), ("task.status", None), ("task.waiting", "no_device"),
        ("task.status", None), ("task.status", None),
    ]  # fmt: skip
    pool.settle()


def test_a_failing_model_server_says_model_unavailable_while_the_client_retries(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    gate = threading.Event()
    # A 503, then the retry is held at the gate: the task must say why it does not move meanwhile.
    with serve(ModelServer(Status(503, "overloaded"), Gate(gate, Reply('finish(message="done")')))) as model:
        start_worker(model.base_url)
        task = api.submit("Open Settings", timeout_s=120)
        waiting = waits(api, task["id"], "model_unavailable")
        assert waiting["status"] == "running" and "HTTP 503" in waiting["waiting"]["message"], waiting
        gate.set()
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)
    assert done["waiting"] is None and len(model.requests) == 2
    assert waiting_changes(api, task["id"]) == [
        ("task.created", "queued"), ("task.status", None), ("task.status", None),
        ("task.waiting", "model_unavailable"), ("task.waiting", None), ("task.status", None),
    ]  # fmt: skip
    pool.settle()


def test_a_task_waiting_on_a_person_says_so_with_the_agents_message(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    model = start_reference_model(tmp_path / "model", script=people_script(tmp_path))
    try:
        start_worker(model.base_url)
        task = api.submit("Buy the shirt", timeout_s=60)
        asked = (
            ("task.takeover_requested", "handback", {"note": "logged in"}, "takeover", "Please log in"),
            ("task.question", "reply", {"answer": "medium"}, "question", "Which size?"),
            ("task.confirmation_requested", "confirm", {"approved": True}, "confirmation", "Pay 10 EUR"),
        )
        for request, route, answer, kind, message in asked:
            seen = waits(api, task["id"], kind)
            # Over REST, not only on the events socket: what the agent said, and since when.
            assert seen["waiting"]["message"] == message and seen["waiting"]["since"] >= task["created_at"]
            # And the step that asks is in /steps while it waits, saying what it asked.
            asking = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"][-1]
            assert (asking["result"], asking["note"], asking["actor"]) == ("waiting", message, "agent"), asking
            answer_over_http(api, task["id"], request, route, answer)
        done = api.wait_status(task["id"], ("succeeded",), timeout=30)
    finally:
        model.stop()
    assert done["waiting"] is None
    listed = api.http.get("/api/v1/tasks").json()["items"]
    assert [t["waiting"] for t in listed if t["id"] == task["id"]] == [None]
    statuses = [k for t, k in waiting_changes(api, task["id"]) if t == "task.status"]
    assert statuses == [None, None, "takeover", None, "question", None, "confirmation", None, None], statuses
    pool.settle()


def test_a_payment_asks_with_the_label_of_what_it_taps(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    task = api.submit("Open Shop, search for 'earbuds', add Wireless Earbuds to the cart and pay", timeout_s=180)
    # Search, add to the cart, open it, check out: a dozen steps of the OCR model first.
    seen = waits(api, task["id"], "confirmation", timeout=150)
    assert seen["status"] == "awaiting_confirmation" and seen["waiting"]["message"].startswith("Pay"), seen
    # While it waits: the step that asks is listed, with what it asked.
    asking = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"][-1]
    assert (asking["result"], asking["note"]) == ("waiting", seen["waiting"]["message"]), asking
    # The request names the element the tap hits, read from the phone's view tree: the Pay button.
    [request] = [e for e in api.rows(task["id"])[1] if e.type == "task.confirmation_requested"]
    assert re.fullmatch(r"Pay \$\d+\.\d\d", request.payload["element_label"]), request.payload
    assert request.payload["message"] == seen["waiting"]["message"]
    r = api.http.post(f"/api/v1/tasks/{task['id']}/confirm", json={"approved": True})
    assert r.status_code == 200, r.text
    done = api.wait_status(task["id"], ("succeeded",), timeout=90)
    assert done["waiting"] is None
    pool.settle()
