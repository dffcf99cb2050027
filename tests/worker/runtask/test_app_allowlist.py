"""The app allowlist as a task submitted through the API gets it: a real worker process claims a task
on a personal phone whose own ``allowed_apps`` are narrower than the task's, and the run is held to
the apps both allow (docs/security.md, "App allowlist"). The agent's checks themselves are
tests/worker/agent/test_app_policy.py; this is the wiring from the rows to the run."""

from __future__ import annotations

from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker
from tests.worker.runtask.test_personal_phone_tasks import personal

SETTINGS, CONTACTS = "com.android.settings", "com.android.contacts"


def test_a_task_on_a_personal_phone_gets_the_apps_both_lists_allow(
    api: Api, personal_pool: Pool, start_worker: StartWorker
) -> None:
    made = api.http.post("/api/v1/personal-phones", json={"name": "P", "allowed_apps": [SETTINGS]})
    assert made.status_code == 201, made.text
    replies = [
        Reply('do(action="Launch", app="Contacts")'),  # the task allows it, the phone does not
        Reply('do(action="Launch", app="Settings")'),  # both do
        Reply('finish(message="done")'),
    ]
    with serve(ModelServer(*replies)) as model, personal_pool.managed():
        start_worker(model.base_url)
        task = api.submit(
            "Open Contacts", personal_phone_id=made.json()["id"], allowed_apps=[SETTINGS, CONTACTS], timeout_s=120
        )
        done = api.wait_status(task["id"], ("succeeded",), timeout=90)
    steps = api.http.get(f"/api/v1/tasks/{done['id']}/steps").json()["items"]
    assert [(s["action"]["name"], s["result"]) for s in steps[:2]] == [
        ("Launch", "refused: not in allowed_apps"),
        ("Launch", "ok"),
    ], [(s["action_text"], s["result"]) for s in steps]
    assert steps[1]["current_app"] != "Contacts" and CONTACTS not in (steps[1]["current_app"] or "")
    # The model was told which apps it may use: the phone's, not the task's wider list.
    told = str(model.requests[1].body["messages"][-1]["content"])
    assert f"it is not among the apps this task may use ({SETTINGS})" in told, told
    assert personal(api, made.json()["id"])["allowed_apps"] == [SETTINGS]
