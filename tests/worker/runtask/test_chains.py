"""Task chains end to end on the virtual phone with the reference model (worker/run/chain.py): the
subgoals run one after another on one phone, each with its own status, steps and result; a failed
subgoal stops the chain, or asks the person (retry / skip / cancel)."""

from __future__ import annotations

import io
import json
import zipfile

from tests.processes import ReferenceModel
from tests.worker.runtask.conftest import Api, Pool, StartWorker


def test_a_chain_of_two_subgoals_succeeds_with_both_results(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    pool.shell("settings put global wifi_on 0")
    task = api.submit("Get the phone online", subgoals=["Open Settings", "Turn on Wi-Fi"], timeout_s=120)
    assert [s["status"] for s in task["subgoals"]] == ["pending", "pending"], task
    assert task["on_step_failure"] == "stop", task
    done = api.wait_status(task["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded", done
    assert done["message"].startswith("2 of 2 subgoals succeeded"), done
    first, second = done["subgoals"]
    assert (first["goal"], first["status"], second["goal"], second["status"]) == (
        "Open Settings", "succeeded", "Turn on Wi-Fi", "succeeded",
    ), done["subgoals"]  # fmt: skip
    assert first["message"] and second["message"], done["subgoals"]  # each its own result
    assert pool.shell("settings get global wifi_on").strip() == "1"

    # Each step links to its subgoal; the second's steps follow the first's.
    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    for part in (first, second):
        mine = [s["index"] for s in steps if s["subgoal"] == part["index"]]
        assert mine == list(range(part["first_step"], part["last_step"] + 1)), (part, steps)
        assert part["steps"] == len(mine) and steps[mine[-1]]["action"]["name"] == "finish", part
    assert first["last_step"] < second["first_step"], done["subgoals"]
    assert done["result"]["chain"] == {"subgoals": 2, "succeeded": 2}, done["result"]

    # The trajectory shows the chain: the task's subgoals, and each step's.
    with zipfile.ZipFile(
        io.BytesIO(api.http.get(f"/api/v1/tasks/{task['id']}/trajectory").content)
    ) as archive:
        assert json.loads(archive.read("task.json"))["subgoals"] == done["subgoals"]
        lines = [json.loads(line) for line in archive.read("steps.jsonl").splitlines()]
    assert [line["subgoal"] for line in lines] == [s["subgoal"] for s in steps], lines

    _row, events, leases = api.rows(task["id"])
    moved = [(e.payload["index"], e.payload["status"]) for e in events if e.type == "task.subgoal"]
    assert moved == [(0, "running"), (0, "succeeded"), (1, "running"), (1, "succeeded")], moved
    assert len(leases) == 1, leases  # one phone for the whole chain


def test_a_failed_first_subgoal_stops_the_chain(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    pool.shell("settings put global wifi_on 0")
    # Two steps cannot turn Wi-Fi on from the home screen (open Settings, tap, finish).
    task = api.submit(
        "Wi-Fi, then Settings", subgoals=["Turn on Wi-Fi", "Open Settings"], max_steps=2, timeout_s=120
    )
    done = api.wait_status(task["id"], ("succeeded", "failed"), timeout=90)
    assert (done["status"], done["reason"]) == ("failed", "max_steps"), done
    assert done["message"].startswith('subgoal 1 of 2 ("Turn on Wi-Fi") failed'), done
    first, second = done["subgoals"]
    assert (first["status"], first["reason"], first["steps"]) == ("failed", "max_steps", 2), first
    assert second["status"] == "pending", second  # never run


def test_a_failed_subgoal_asks_and_a_retry_goes_on_from_the_current_screen(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    start_worker(reference_model.base_url)
    pool.shell("settings put global wifi_on 0")
    task = api.submit(
        "Wi-Fi, then Settings", subgoals=["Turn on Wi-Fi", "Open Settings"], max_steps=2, timeout_s=120,
        on_step_failure="ask",
    )  # fmt: skip
    waiting = api.wait_status(task["id"], ("waiting_for_user",), timeout=90)
    assert waiting["waiting"]["kind"] == "question", waiting
    assert 'Subgoal 1 of 2 failed: "Turn on Wi-Fi"' in waiting["waiting"]["message"], waiting
    assert waiting["subgoals"][0]["status"] == "failed", waiting["subgoals"]

    wrong = api.http.post(f"/api/v1/tasks/{task['id']}/reply", json={"answer": "maybe"})
    assert wrong.status_code == 422 and "retry, skip, cancel" in wrong.json()["message"], wrong.text
    retry = api.http.post(f"/api/v1/tasks/{task['id']}/reply", json={"answer": " Retry "})
    assert retry.status_code == 200, retry.text

    # The retry starts from the screen the failed run left (Settings open): two steps now do it.
    done = api.wait_status(task["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded", done
    first, second = done["subgoals"]
    assert (first["status"], first["runs"], second["status"]) == ("succeeded", 2, "succeeded"), done[
        "subgoals"
    ]
    assert pool.shell("settings get global wifi_on").strip() == "1"
    _row, events, _leases = api.rows(task["id"])
    question = next(e.payload for e in events if e.type == "task.question")
    assert (question["subgoal"], question["choices"]) == (0, ["retry", "skip", "cancel"]), question
    assert any(e.type == "task.reply" and e.payload["answer"] == "retry" for e in events)


def test_subgoals_are_validated(api: Api) -> None:
    for bad in ([], ["  "], ["x"] * 11, ["a" * 501], "one"):
        answer = api.http.post("/api/v1/tasks", json={"instruction": "x", "subgoals": bad})
        assert answer.status_code == 422 and "subgoals" in answer.text, (bad, answer.text)
    answer = api.http.post("/api/v1/tasks", json={"instruction": "x", "on_step_failure": "ask"})
    assert answer.status_code == 422 and "on_step_failure needs subgoals" in answer.text, answer.text
    answer = api.http.post(
        "/api/v1/tasks", json={"instruction": "x", "subgoals": ["a"], "on_step_failure": "maybe"}
    )
    assert answer.status_code == 422, answer.text
    assert api.submit("x")["subgoals"] is None
