"""Second tries end to end: a task whose first try runs out of steps succeeds on its second, on the
same phone, from the screen the first left; both tries are in its one trajectory (worker/run/tries.py)."""

from __future__ import annotations

from tests.processes import ReferenceModel
from tests.worker.runtask.conftest import Api, Pool, StartWorker

WIFI = "Open Settings and turn on Wi-Fi"


def test_a_task_whose_first_try_runs_out_of_steps_succeeds_on_its_second(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    pool.shell("settings put global wifi_on 0")
    # The reference model needs more than two steps for this (open Settings, tap Wi-Fi, finish):
    # two per try cannot do it in one try, but the second starts where the first stopped.
    task = api.submit(WIFI, timeout_s=120, max_steps=2, max_tries=2)
    assert task["max_tries"] == 2, task
    done = api.wait_status(task["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1, done  # a try is no attempt: the same claim, the same phone
    assert done["result"]["succeeded_on_try"] == 2, done
    assert "succeeded on try 2 of 2" in done["message"], done
    first, second = done["result"]["tries"]
    assert (first["try"], first["status"], first["reason"], first["steps"]) == (1, "failed", "max_steps", 2)
    assert (second["try"], second["status"], second["reason"]) == (2, "succeeded", None), second
    assert pool.shell("settings get global wifi_on").strip() == "1"

    # Both tries in one trajectory, in order: the second's steps follow the first's.
    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    assert [s["index"] for s in steps] == list(range(len(steps))), steps
    assert (first["first_step"], first["last_step"]) == (0, 1), first
    assert second["first_step"] == 2 and second["last_step"] == len(steps) - 1, (second, len(steps))
    assert steps[-1]["action"]["name"] == "finish", steps[-1]
    assert done["result"]["steps"] == len(steps)

    _row, events, leases = api.rows(task["id"])
    started = [e for e in events if e.type == "task.try_started"]
    assert len(started) == 1 and started[0].payload["try"] == 2, [e.payload for e in started]
    assert started[0].payload["after"]["reason"] == "max_steps", started[0].payload
    kinds = [e.type for e in events]
    # The second try starts after the first try's steps and before the second's.
    assert kinds.index("task.try_started") == kinds.index("task.step") + 2, kinds
    assert len(leases) == 1, leases  # one phone for both tries


def test_max_tries_is_validated(api: Api) -> None:
    for bad in (0, 6, "two"):
        answer = api.http.post("/api/v1/tasks", json={"instruction": WIFI, "max_tries": bad})
        assert answer.status_code == 422 and "max_tries" in answer.text, answer.text
    assert api.submit(WIFI)["max_tries"] == 1  # tasks.default_max_tries
