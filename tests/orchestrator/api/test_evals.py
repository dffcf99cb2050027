"""``/api/v1/evals`` over real HTTP: an eval expands its suite into queued tasks that carry their
evaluation; the report counts them; bad input answers 422 and another tenant's eval 404. (Running
one on phones is ``tests/system/test_evals.py``.)"""

from __future__ import annotations

from tests.orchestrator.api.conftest import Api


def test_create_expands_the_suite_into_evaluated_tasks_and_reports(api: Api) -> None:
    a = api.caller()
    body = {"suite": "builtin", "models": ["scripted", "default"], "templates": ["wifi_on", "add_contact"],
            "repeat": 2, "seed": 3, "parallel": 3}  # fmt: skip
    created = a.http.post("/api/v1/evals", json=body)
    assert created.status_code == 201, created.text
    report = created.json()
    assert (report["tasks"], report["done"], report["pending"], report["success_rate"]) == (8, 0, 8, None)
    assert (report["wilson_low"], report["wilson_high"], report["parallel"]) == (0.0, 1.0, 3)
    assert [t["template"] for t in report["templates"]] == ["wifi_on", "add_contact"]
    task = a.http.get(f"/api/v1/tasks/{report['task_list'][0]['task_id']}").json()
    assert task["model"] == "scripted" and task["status"] == "queued"
    assert task["metadata"] == {"eval_id": report["id"], "template": "wifi_on"}
    # The same seed gives the same tasks.
    again = a.http.post("/api/v1/evals", json=body).json()
    instructions = [a.http.get(f"/api/v1/tasks/{t['task_id']}").json()["instruction"] for t in report["task_list"]]
    assert instructions == [a.http.get(f"/api/v1/tasks/{t['task_id']}").json()["instruction"]
                            for t in again["task_list"]]  # fmt: skip
    assert a.http.get(f"/api/v1/evals/{report['id']}").json()["tasks"] == 8
    assert [e["id"] for e in a.http.get("/api/v1/evals").json()] == [again["id"], report["id"]]
    other = api.caller()
    missing = other.http.get(f"/api/v1/evals/{report['id']}")
    assert (missing.status_code, missing.json()["error"]) == (404, "eval_not_found")


def test_bad_input_is_a_clear_422(api: Api) -> None:
    a = api.caller()
    cases = [
        ({"suite": "nope", "models": ["scripted"]}, "no suite named 'nope'"),
        ({"suite": "builtin", "models": ["scripted"], "templates": ["wifi_on", "fly"]}, "no template named fly"),
        ({"suite": "builtin", "models": ["http://10.0.0.1:8000/v1"]}, "a raw URL is not accepted"),
        ({"suite": "builtin", "models": ["gpt-9"]}, "no model endpoint named 'gpt-9'; the endpoints you may use: default"),
        ({"suite": "builtin", "models": []}, "models"),
        ({"suite": "builtin", "models": ["scripted"], "repeat": 0}, "repeat"),
    ]
    for body, words in cases:
        answer = a.http.post("/api/v1/evals", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert words in answer.json()["message"], (body, answer.json())
