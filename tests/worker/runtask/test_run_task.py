"""``phonefleet.run_task`` end to end: a task submitted over HTTP, run by a real worker process on a
pooled virtual phone against a real model server, followed through the API and the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from orchestrator.db import DeviceState, TaskStatus
from tests.conditions import wait_until
from tests.processes import ReferenceModel, start_reference_model
from tests.worker.agent.model_servers import Hang, ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker, people_script

WIFI = "Open Settings and turn on Wi-Fi"


def test_a_task_from_submit_to_succeeded(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    pool.shell("settings put global wifi_on 0")
    task = api.submit(WIFI, timeout_s=120)
    assert task["status"] == "queued"
    done = api.wait_status(task["id"], ("succeeded",), timeout=90)
    assert done["attempts"] == 1 and done["started_at"] and done["finished_at"], done
    assert done["result"]["steps"] >= 2 and done["result"]["usage"]["completion_tokens"] > 0, done

    # Looked at before the pool resets it: the agent really turned Wi-Fi on.
    assert pool.shell("settings get global wifi_on").strip() == "1"

    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    assert [s["index"] for s in steps] == list(range(len(steps))) and len(steps) == done["result"]["steps"]
    assert steps[-1]["action"]["name"] == "finish", steps[-1]
    for step in steps:
        image = api.http.get(step["screenshot_url"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content[:2] == b"\xff\xd8"
        # Stored sealed by the worker (the API's storage.encryption_key is the worker's too).
        stored = (api.settings.data_dir / "tasks" / task["id"] / f"step-{step['index']:03d}.jpg").read_bytes()
        assert stored.startswith(b"PFENC1") and image.content[:64] not in stored
        assert step["timings"]["model_s"] > 0 and step["current_app"]

    row, events, leases = api.rows(task["id"])
    kinds = [e.type for e in events]
    n = len(steps)
    assert kinds == (
        ["task.created", "task.status", "device.leased", "task.status"] + ["task.step"] * n
        + ["task.status", "device.released"]
    ), kinds  # fmt: skip
    transitions = [(e.payload["from"], e.payload["to"]) for e in events if e.type == "task.status"]
    assert transitions == [("queued", "leasing"), ("leasing", "running"), ("running", "succeeded")]
    assert row.device_id == leases[0].device_id
    assert len(leases) == 1 and leases[0].release_reason == "released", leases

    # The pool resets the phone it got back, and it is idle again.
    assert pool.devices()[0].state == DeviceState.RESETTING
    pool.settle()


def test_cancel_interrupts_the_model_call_of_a_running_task(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    # The model never answers and the worker's client gives up on a first token only after 60 s:
    # a task cancelled within 45 s, on its only model request, was cut off mid-call by the cancel.
    with serve(ModelServer(default=Hang(limit_s=600))) as model:
        start_worker(model.base_url)
        task = api.submit(WIFI, timeout_s=300)
        api.wait_status(task["id"], ("running",), timeout=30)
        wait_until(lambda: model.requests, timeout=30, what="the agent asked the model")
        # A second delivery while a live worker holds the task does nothing.
        api.enqueue(task["id"])
        response = api.http.post(f"/api/v1/tasks/{task['id']}/cancel")
        assert response.status_code == 200 and response.json()["cancel_requested"], response.text
        done = api.wait_status(task["id"], ("cancelled",), timeout=45)
        assert done["reason"] == "cancelled" and done["attempts"] == 1, done
        # The worker merged its result into the API's: the cancel request is still there.
        assert "cancel_requested_at" in done["result"] and "steps" in done["result"], done["result"]
        wait_until(model.disconnected.is_set, timeout=30, what="the model call was abandoned")
        assert len(model.requests) == 1  # abandoned, not retried

    _, events, leases = api.rows(task["id"])
    assert len(leases) == 1 and leases[0].released_at is not None, leases
    assert [e.type for e in events].count("device.leased") == 1
    pool.settle()


def test_duplicate_deliveries_run_a_task_once(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    task = api.submit(WIFI, timeout_s=120)
    api.enqueue(task["id"])
    api.enqueue(task["id"])
    # Three messages for one task wait in the queue; two threads take them at once.
    worker = start_worker(reference_model.base_url, concurrency=2)
    api.wait_status(task["id"], ("succeeded",), timeout=90)
    row, events, leases = api.rows(task["id"])
    assert row.attempts == 1 and len(leases) == 1
    claims = [e for e in events if e.type == "task.status" and e.payload["to"] == "leasing"]
    assert len(claims) == 1, claims
    wait_until(
        lambda: not api.queued() and worker.log().count("delivery ignored") == 2,
        timeout=10, what="both duplicate deliveries consumed and ignored",
    )  # fmt: skip


def test_a_killed_workers_task_is_reclaimed_then_failed_worker_lost(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    # Two attempts at most (tasks.max_infra_attempts; default 3): the second re-claim fails it.
    ttl = {"PHONEFLEET_POOL__LEASE_TTL_S": "2", "PHONEFLEET_POOL__HEARTBEAT_S": "0.5",
           "PHONEFLEET_TASKS__MAX_INFRA_ATTEMPTS": "2"}  # fmt: skip
    with serve(ModelServer(default=Hang(limit_s=60))) as model:
        first = start_worker(model.base_url, **ttl)
        task = api.submit(WIFI, timeout_s=120)
        api.wait_status(task["id"], ("running",), timeout=30)
        for attempt in (1, 2):
            first.kill()
            # The next worker starts while the dead one's lease runs out.
            first = start_worker(model.base_url, **ttl)
            pool.settle()  # reaps the expired lease and resets the phone
            assert api.task(task["id"])["status"] == "running"  # nobody else would ever finish it

            def stale() -> bool:
                row, _, _ = api.rows(task["id"])
                return row.heartbeat_at < dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)

            wait_until(stale, timeout=10, what="the task's heartbeat is stale")
            api.enqueue(task["id"])  # what the sweeper will do
            if attempt == 1:
                wait_until(lambda: api.rows(task["id"])[0].attempts == 2, timeout=20, what="re-claimed")
                api.wait_status(task["id"], ("running",), timeout=30)
        done = api.wait_status(task["id"], ("failed",), timeout=20)
        assert done["reason"] == "worker_lost" and done["attempts"] == 2, done
        assert "no attempts left (2 of 2)" in done["message"], done

    row, events, leases = api.rows(task["id"])
    assert [lease.release_reason for lease in leases] == ["expired", "expired"]
    transitions = [(e.payload["from"], e.payload["to"]) for e in events if e.type == "task.status"]
    assert transitions == [
        ("queued", "leasing"), ("leasing", "running"),
        ("running", "leasing"), ("leasing", "running"),
        ("running", "failed"),
    ], transitions  # fmt: skip
    assert row.status == TaskStatus.FAILED
    # The lost first attempt was announced as a retry by the claim that took it over.
    retries = [e.payload for e in events if e.type == "task.retrying"]
    assert [(r["attempt"], r["reason"], r["avoid_device"]) for r in retries] == [(1, "worker_lost", False)], (
        retries
    )
    pool.settle()


def answer_over_http(api: Api, task_id: str, request: str, route: str, body: dict[str, Any]) -> None:
    """Wait for the worker's ``request`` event, then answer with ``POST /api/v1/tasks/{id}/{route}``."""
    wait_until(
        lambda: any(e.type == request for e in api.rows(task_id)[1]),
        timeout=30, interval=0.05, what=f"a {request} event",
    )  # fmt: skip
    r = api.http.post(f"/api/v1/tasks/{task_id}/{route}", json=body)
    assert r.status_code == 200, r.text


def test_people_answer_through_events(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    model = start_reference_model(tmp_path / "model", script=people_script(tmp_path))
    try:
        start_worker(model.base_url)
        task = api.submit("Buy the shirt", timeout_s=60)
        # Each answer goes through the API's route once the worker has asked.
        answer_over_http(api, task["id"], "task.takeover_requested", "handback", {"note": "logged in"})
        answer_over_http(api, task["id"], "task.question", "reply", {"answer": "medium"})
        answer_over_http(api, task["id"], "task.confirmation_requested", "confirm", {"approved": True})
        done = api.wait_status(task["id"], ("succeeded",), timeout=30)
    finally:
        model.stop()
    assert done["message"] == "paid", done
    _, events, _ = api.rows(task["id"])
    waits = [e.payload["to"] for e in events if e.type == "task.status"]
    assert waits == ["leasing", "running", "waiting_for_user", "running", "waiting_for_user", "running",
                     "awaiting_confirmation", "running", "succeeded"], waits  # fmt: skip
    answers = [
        (e.type, e.payload) for e in events if e.type in ("task.handback", "task.reply", "task.confirmation")
    ]
    assert answers == [("task.handback", {"note": "logged in"}), ("task.reply", {"answer": "medium"}),
                       ("task.confirmation", {"approved": True})], answers  # fmt: skip
    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    # The person's hand-back is a step of theirs too (actor user), with their note.
    assert [(s["action"]["name"], s["note"]) for s in steps if s["actor"] == "user"] == [
        ("Hand_back", "logged in")
    ]
    notes = [s["note"] for s in steps if s["actor"] == "agent"]
    assert "logged in" in notes[0] and "medium" in notes[1] and "approved" in notes[2], notes


def test_a_person_takes_over_a_running_task_and_hands_it_back(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    # The first model call hangs (the agent is busy), the second finishes: the takeover must
    # abandon the first, hold the agent in user_control, and the handback's note must reach the model.
    with serve(ModelServer(Hang(limit_s=60), Reply('finish(message="done")'))) as model:
        start_worker(model.base_url)
        task = api.submit(WIFI, timeout_s=120)
        api.wait_status(task["id"], ("running",), timeout=30)
        wait_until(lambda: model.requests, timeout=30, what="the agent asked the model")
        r = api.http.post(f"/api/v1/tasks/{task['id']}/takeover", json={"note": "let me"})
        assert r.status_code == 200, r.text
        # Within 45 s, before the client's own 60 s first-token timeout: the takeover cut the call off.
        api.wait_status(task["id"], ("user_control",), timeout=45)
        wait_until(model.disconnected.is_set, timeout=30, what="the model call was abandoned")
        assert len(model.requests) == 1  # paused: the agent asks nothing while the person drives
        r = api.http.post(f"/api/v1/tasks/{task['id']}/handback", json={"note": "I opened Settings for you"})
        assert r.status_code == 200, r.text
        done = api.wait_status(task["id"], ("succeeded",), timeout=30)
        last = model.requests[-1].body["messages"][-1]["content"][-1]["text"]
    assert done["message"] == "done"
    assert "I opened Settings for you" in last
    _, events, _ = api.rows(task["id"])
    moves = [e.payload["to"] for e in events if e.type == "task.status"]
    assert moves == ["leasing", "running", "user_control", "running", "succeeded"], moves
    pool.settle()


def test_a_task_on_a_planner_grounder_pair_keeps_both_replies_in_its_steps(
    api: Api, pool: Pool, start_worker: StartWorker, tmp_path: Path
) -> None:
    """The worker runs the default endpoint, a pair of two reference models (docs/models.md,
    "Planner and grounder"); each step read back through the API shows both replies."""
    import json

    planner = start_reference_model(tmp_path / "models", role="planner")
    try:
        grounder = start_reference_model(tmp_path / "models", family="ui-tars", role="grounder")
    except BaseException:
        planner.stop()
        raise
    try:
        endpoints = [
            {"name": "pair", "planner": "planner", "grounder": "tars"},
            {"name": "planner", "base_url": planner.base_url, "model": "autoglm-phone-9b"},
            {"name": "tars", "base_url": grounder.base_url, "model": "autoglm-phone-9b", "family": "ui-tars"},
        ]
        start_worker(planner.base_url, PHONEFLEET_MODEL__ENDPOINTS=json.dumps(endpoints))
        pool.shell("settings put global wifi_on 0")
        task = api.submit(WIFI, timeout_s=240)
        done = api.wait_status(task["id"], ("succeeded",), timeout=250)
        assert pool.shell("settings get global wifi_on").strip() == "1", done
        steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
        for step in steps:
            assert step["replies"][0]["role"] == "planner" and step["timings"]["planner_s"] > 0, step
        tap = next(s for s in steps if s["action"]["name"] == "Tap")
        planned, grounded = tap["replies"]
        assert grounded["role"] == "grounder" and grounded["reply"].startswith("Thought: ")
        assert 'element="' in planned["reply"] and tap["timings"]["grounder_s"] > 0, tap
    finally:
        planner.stop()
        grounder.stop()
