"""A task a person took over, run by a real worker: the person's steps (as the API's live view
writes them) are numbered among the agent's, and the model's next turn is told what they did."""

from __future__ import annotations

import uuid

from orchestrator.db import Task
from orchestrator.db.steps import USER, insert_step
from tests.aio import run
from tests.conditions import wait_until
from tests.databases import open_sessions
from tests.worker.agent.model_servers import Hang, ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker


def _person_steps(api: Api, task_id: str) -> list[int]:
    """Two steps of a person, written as ``orchestrator/live/user_steps.py`` writes them."""

    async def write() -> list[int]:
        async with open_sessions(api.settings.database_url) as sessions:
            indexes = []
            for action, text, note in (
                ({"name": "Tap", "element": [500, 300]}, 'do(action="Tap", element=[500,300])', None),
                ({"name": "Type", "text": "•••", "redacted": True, "length": 4}, 'do(action="Type", text="•••")',
                 "typed 4 characters into a password field (not recorded)"),
            ):  # fmt: skip
                async with sessions.begin() as s:
                    assert await s.get(Task, uuid.UUID(task_id)) is not None
                    row = {"actor": USER, "action": action, "action_text": text, "result": "ok", "note": note,
                           "current_app": "Settings", "timings": {}}  # fmt: skip
                    indexes.append(await insert_step(s, uuid.UUID(task_id), row))
            return indexes

    return run(write())


def test_the_model_is_told_what_the_person_did_and_the_steps_interleave(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    script = ModelServer(
        Reply('do(action="Launch", app="Settings")'), Hang(limit_s=60), Reply('finish(message="done")')
    )
    with serve(script) as model:
        start_worker(model.base_url)
        task = api.submit("Open Settings and log in", timeout_s=120)
        wait_until(lambda: len(model.requests) >= 2, timeout=30, what="the agent's second model call")
        r = api.http.post(f"/api/v1/tasks/{task['id']}/takeover", json={"note": "let me"})
        assert r.status_code == 200, r.text
        api.wait_status(task["id"], ("user_control",), timeout=45)
        assert _person_steps(api, task["id"]) == [1, 2]  # after the agent's Launch (step 0)
        r = api.http.post(f"/api/v1/tasks/{task['id']}/handback", json={"note": "logged in"})
        assert r.status_code == 200, r.text
        done = api.wait_status(task["id"], ("succeeded",), timeout=30)
        told = model.requests[-1].body["messages"][-1]["content"][-1]["text"]
    assert done["message"] == "done"
    assert "logged in" in told
    assert "they did these actions themselves" in told
    assert '1. do(action="Tap", element=[500,300]) in Settings' in told
    assert '2. do(action="Type", text="•••") in Settings (typed 4 characters' in told
    assert "Hand_back" not in told  # the hand-back's note is said once, as the note
    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    assert [(s["index"], s["actor"], s["action"]["name"]) for s in steps] == [
        (0, "agent", "Launch"), (1, "user", "Tap"), (2, "user", "Type"), (3, "user", "Hand_back"),
        (4, "agent", "finish"),
    ], steps  # fmt: skip
    pool.settle()
