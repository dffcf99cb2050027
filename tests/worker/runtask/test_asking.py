"""The agent asks instead of looping, through the real API and a real worker process: a run that
goes round in a loop waits for a person (``waiting_for_user``, ``waiting.kind = question``) with a
question saying what it tried, its asking step is in ``/steps`` while it waits, and an answer lets
it go on; ``agent.on_stuck = fail`` keeps the old end, and ``agent.wait_for_user_s`` bounds the
wait (then ``failed``/``no_answer``, the phone given back)."""

from __future__ import annotations

from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker
from tests.worker.runtask.test_run_task import answer_over_http
from tests.worker.runtask.test_waiting import waiting_changes, waits

# Settings opened from the home screen, then home again, twice: a loop of two (screen, action) pairs.
LOOP = [Reply('do(action="Launch", app="Settings")'), Reply('do(action="Home")')] * 2


def steps_of(api: Api, task_id: str) -> list[dict]:
    response = api.http.get(f"/api/v1/tasks/{task_id}/steps")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_run_that_loops_asks_over_rest_and_an_answer_lets_it_finish(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    with serve(ModelServer(*LOOP, Reply('finish(message="done")'))) as model:
        start_worker(model.base_url)
        task = api.submit("Find the Wi-Fi page", timeout_s=120)
        seen = waits(api, task["id"], "question")
        assert seen["status"] == "waiting_for_user", seen
        message = seen["waiting"]["message"]
        assert message.startswith("I'm stuck on Settings: I tried "), message
        assert 'Launch(app="Settings")' in message and "Home" in message and "tell me how" in message
        # While it waits: the step that asks, with its screenshot and what it asked.
        asking = steps_of(api, task["id"])[-1]
        assert (asking["index"], asking["result"], asking["note"]) == (3, "waiting", message), asking
        image = api.http.get(asking["screenshot_url"])
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"

        answer_over_http(api, task["id"], "task.question", "reply", {"answer": "Wi-Fi is under Network"})
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)
        requests = model.requests
    assert done["message"] == "done" and done["waiting"] is None
    assert "Wi-Fi is under Network" in requests[4].body["messages"][-1]["content"][-1]["text"]
    results = [s["result"] for s in steps_of(api, task["id"])]
    assert results == ["ok", "ok", "ok", "stuck: asked the user", "ok"], results
    pool.settle()


def test_on_stuck_fail_ends_a_loop_failed_stuck(api: Api, pool: Pool, start_worker: StartWorker) -> None:
    with serve(ModelServer(*LOOP, default=Reply('finish(message="done")'))) as model:
        start_worker(model.base_url, PHONEFLEET_AGENT__ON_STUCK="fail")
        task = api.submit("Find the Wi-Fi page", timeout_s=120)
        done = api.wait_status(task["id"], ("failed",), timeout=60)
    assert done["reason"] == "stuck" and "a loop of 2 actions" in done["message"], done
    assert all(kind != "question" for _, kind in waiting_changes(api, task["id"]))
    pool.settle()


def test_nobody_answering_within_wait_for_user_s_fails_no_answer_and_gives_the_phone_back(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    with serve(ModelServer(Reply('do(action="Take_over", message="Please log in")'))) as model:
        start_worker(model.base_url, PHONEFLEET_AGENT__WAIT_FOR_USER_S="2")
        task = api.submit("Log in to the shop", timeout_s=120)
        seen = waits(api, task["id"], "takeover")
        assert seen["waiting"]["message"] == "Please log in"
        assert [s["result"] for s in steps_of(api, task["id"])] == ["waiting"]
        done = api.wait_status(task["id"], ("failed",), timeout=60)
    assert done["reason"] == "no_answer" and "Please log in" in done["message"], done
    assert done["waiting"] is None
    assert [s["result"] for s in steps_of(api, task["id"])] == ["no answer"]
    _, _, leases = api.rows(task["id"])
    assert len(leases) == 1 and leases[0].released_at is not None, leases
    pool.settle()


def test_a_person_may_take_over_instead_of_answering_and_hand_back(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    with serve(ModelServer(*LOOP, Reply('finish(message="done")'))) as model:
        start_worker(model.base_url)
        task = api.submit("Find the Wi-Fi page", timeout_s=120)
        waits(api, task["id"], "question")
        r = api.http.post(f"/api/v1/tasks/{task['id']}/takeover", json={"note": "let me"})
        assert r.status_code == 200, r.text
        held = api.wait_status(task["id"], ("user_control",), timeout=30)
        assert held["waiting"] is None  # a person drives the phone: not a wait
        r = api.http.post(f"/api/v1/tasks/{task['id']}/handback", json={"note": "I opened Network for you"})
        assert r.status_code == 200, r.text
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)
        requests = model.requests
    assert done["message"] == "done"
    assert "I opened Network for you" in requests[4].body["messages"][-1]["content"][-1]["text"]
    asking = steps_of(api, task["id"])[3]
    assert asking["result"] == "stuck: asked the user" and "took control" in asking["note"], asking
    pool.settle()
