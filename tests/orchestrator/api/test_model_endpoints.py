"""Model endpoints by name: what ``GET /api/v1/models`` shows to whom, and a task's ``model`` naming one."""

from __future__ import annotations

import pytest

from orchestrator.db import UserRole
from orchestrator.settings import Settings
from tests.orchestrator.conftest import Api, StartApi

ENDPOINTS = [
    {"name": "glm", "base_url": "http://gpu-a:8000/v1", "model": "autoglm-phone-9b", "api_key": "sk-glm-secret",
     "failover": ["glm-b"]},
    {"name": "glm-b", "base_url": "http://gpu-b:8000/v1", "model": "autoglm-phone-9b-b"},
    {"name": "tars", "base_url": "http://gpu-c:8000/v1", "model": "ui-tars-1.5-7b", "family": "ui-tars"},
    {"name": "pair", "planner": "glm", "grounder": "tars"},
]  # fmt: skip


@pytest.fixture
def named_api(start_api: StartApi, migrated_sqlite_url: str) -> Api:
    return start_api(migrated_sqlite_url, redis_url=None, model={"endpoints": ENDPOINTS})


def test_a_member_sees_names_and_families_and_an_admin_where_they_are(named_api: Api) -> None:
    member = named_api.caller().http.get("/api/v1/models")
    assert member.status_code == 200, member.text
    assert member.json()["items"] == [
        {"name": "glm", "family": "autoglm", "default": True, "base_url": None, "served_model": None,
         "custom_prompt": None, "max_in_flight": None, "failover": None, "planner": None, "grounder": None},
        {"name": "glm-b", "family": "autoglm", "default": False, "base_url": None, "served_model": None,
         "custom_prompt": None, "max_in_flight": None, "failover": None, "planner": None, "grounder": None},
        {"name": "tars", "family": "ui-tars", "default": False, "base_url": None, "served_model": None,
         "custom_prompt": None, "max_in_flight": None, "failover": None, "planner": None, "grounder": None},
        {"name": "pair", "family": "ui-tars", "default": False, "base_url": None, "served_model": None,
         "custom_prompt": None, "max_in_flight": None, "failover": None, "planner": "glm", "grounder": "tars"},
    ]  # fmt: skip
    admin = named_api.caller(role=UserRole.ADMIN).http.get("/api/v1/models")
    first = admin.json()["items"][0]
    assert (first["base_url"], first["served_model"], first["failover"]) == (
        "http://gpu-a:8000/v1",
        "autoglm-phone-9b",
        ["glm-b"],
    )
    assert "sk-glm-secret" not in admin.text and "sk-glm-secret" not in member.text  # never a key
    assert named_api.client().get("/api/v1/models").status_code == 401


def test_a_task_names_an_endpoint_an_unknown_name_is_refused_with_the_names(named_api: Api) -> None:
    caller = named_api.caller()
    unknown = caller.http.post("/api/v1/tasks", json={"instruction": "x", "model": "gpt-9"})
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["error"] == "unknown_model" and "glm, glm-b, tars, pair" in unknown.json()["message"]
    named = caller.http.post("/api/v1/tasks", json={"instruction": "x", "model": "tars"})
    assert named.status_code == 202 and named.json()["model"] == "tars"
    # An old client's served model name stands for the one endpoint serving it; the task keeps its name.
    served = caller.http.post("/api/v1/tasks", json={"instruction": "x", "model": "ui-tars-1.5-7b"})
    assert served.status_code == 202 and served.json()["model"] == "tars"
    pair = caller.http.post("/api/v1/tasks", json={"instruction": "x", "model": "pair"})
    assert pair.status_code == 202 and pair.json()["model"] == "pair"
    default = caller.http.post("/api/v1/tasks", json={"instruction": "x"})
    assert default.status_code == 202 and default.json()["model"] is None  # the first endpoint runs it
    schedule = caller.http.post(
        "/api/v1/schedules", json={"interval_s": 3600, "task": {"instruction": "x", "model": "nosuch"}}
    )
    assert schedule.status_code == 422 and schedule.json()["error"] == "unknown_model", schedule.text


def test_without_endpoints_base_url_and_name_are_the_endpoint_default() -> None:
    settings = Settings(model={"base_url": "http://m:8000/v1", "name": "autoglm-phone-9b"})
    [ep] = settings.model.all_endpoints()
    assert (ep.name, ep.base_url, ep.model, ep.family) == (
        "default",
        "http://m:8000/v1",
        "autoglm-phone-9b",
        "autoglm",
    )


@pytest.mark.parametrize(
    ("endpoints", "complaint"),
    [
        ([ENDPOINTS[1], ENDPOINTS[1]], "names used twice: glm-b"),
        ([ENDPOINTS[0]], "fails over to 'glm-b', not another endpoint"),
        ([{**ENDPOINTS[0], "failover": ["tars"]}, ENDPOINTS[2]], "of another family"),
        ([{**ENDPOINTS[2], "family": "gpt"}], "family"),
        ([{"name": "half", "planner": "tars"}, ENDPOINTS[2]], "names both its planner and its grounder"),
        ([{"name": "bare"}], "base_url and model are needed"),
        ([ENDPOINTS[3], ENDPOINTS[2]], "its planner 'glm' is not another single endpoint"),
        ([{**ENDPOINTS[3], "planner": "pair"}, ENDPOINTS[2]], "its planner 'pair' is not another single endpoint"),
    ],
)
def test_bad_endpoints_are_refused_at_start(endpoints: list[dict], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Settings(model={"endpoints": endpoints})


def test_endpoints_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("PHONEFLEET_MODEL__ENDPOINTS", json.dumps(ENDPOINTS[1:3]))
    settings = Settings()
    assert [ep.name for ep in settings.model.all_endpoints()] == ["glm-b", "tars"]


def test_a_pair_runs_on_its_planners_server_and_family_with_its_grounders_beside() -> None:
    from orchestrator.model_endpoints import endpoint_for
    from worker.run.endpoints import endpoint_run

    model = Settings(model={"endpoints": ENDPOINTS}).model
    run = endpoint_run(endpoint_for("pair", model), model)
    assert [e.base_url for e in run.client.endpoints] == ["http://gpu-a:8000/v1", "http://gpu-b:8000/v1"]
    assert run.grounder is not None and [e.model for e in run.grounder.endpoints] == ["ui-tars-1.5-7b"]
    assert (run.family, run.grounder_family) == ("autoglm", "ui-tars")
    assert endpoint_run(endpoint_for("tars", model), model).grounder is None
