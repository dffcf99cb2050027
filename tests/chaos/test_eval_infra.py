"""An eval rides out the infrastructure (issue 19): a phone killed and the model server stopped for
10 s mid-run are reported as infrastructure, retried, and the final rate is unchanged.

The chaos workload's fleet (two phones, two workers, every part a real process:
tests/chaos/scenario.py) runs a three-template eval with the scripted solutions, whose rate without
faults is 1.0 (tests/system/test_evals.py). While a task is mid-run its phone's process is
SIGKILLed, then the model server is killed and started again on its port 10 s later. The chaos
invariants hold (tests/chaos/invariants.py); the killed phone's task was run again (a
``task.retrying`` event for the infrastructure, counted in the report's ``infrastructure.retried``);
a task waited out the model (``waiting.kind = model_unavailable``); and the report still scores
every task, all of them passed: nothing the infrastructure did counts against the agent.
"""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy import func, select

from orchestrator.db import Step, Task, TaskStatus
from tests.chaos.scenario import SCRIPT, Scenario, hold
from tests.conditions import wait_until
from tests.processes import child_pid

MODEL_STOP_S = 10.0  # the outage
TEMPLATES = ["add_contact", "send_sms_contact", "wifi_off"]  # several steps each: a fault lands mid-task

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(300)
def test_an_eval_reports_a_killed_phone_and_a_stopped_model_as_infrastructure(chaos) -> None:
    s: Scenario = chaos("eval_infrastructure")
    created = s.fleet.http.post("/api/v1/evals", json={"suite": "builtin", "models": ["scripted"],
                                                       "templates": TEMPLATES, "max_steps": 20, "timeout_s": 150})  # fmt: skip
    assert created.status_code == 201, created.text
    eval_id = created.json()["id"]
    s.submitted += [t["task_id"] for t in created.json()["task_list"]]

    def mid_run() -> Task | None:
        stepped = set(s.fleet.rows(select(Step.task_id).group_by(Step.task_id).having(func.count() >= 1)))
        return next((t for t in s.tasks().values()
                     if t.status == TaskStatus.RUNNING and t.id in stepped and t.device_id), None)  # fmt: skip

    task = wait_until(mid_run, timeout=120, interval=0.1, what="an eval task mid-run")
    port = s.serial_of(task).rsplit(":", 1)[1]
    phone = child_pid(s.fleet.service("pool").proc.pid, "device_pool.providers.sim_process", "--port", port)
    with s.injecting(f"a phone SIGKILLed mid-task, then the model server killed for {MODEL_STOP_S:g} s"):
        os.kill(phone, signal.SIGKILL)
        s.model.proc.kill()
        s.model.proc.wait(10)
        hold(MODEL_STOP_S)
        s.model = s.fleet.start_model(SCRIPT, port=s.model_port)
    s.settle(within_s=180)

    report = s.fleet.http.get(f"/api/v1/evals/{eval_id}").json()
    retried = s.tasks()[str(task.id)]
    assert retried.attempts >= 2, retried
    assert any(e.type == "task.retrying" for e in s.fleet.events(str(task.id))), s.fleet.events(str(task.id))
    waited = {str(e.payload["waiting"]["kind"]) for t in s.submitted for e in s.fleet.events(t)
              if e.type == "task.waiting" and e.payload.get("waiting")}  # fmt: skip
    assert "model_unavailable" in waited, waited
    assert report["infrastructure"]["retried"] >= 1, report["infrastructure"]
    # The rate is the fault-free one: every task scored (none left to the infrastructure), every one passed.
    failures = [(t["template"], t["status"], t["reason"], t["score"]) for t in report["task_list"] if not t.get("success")]
    assert (report["runs"], report["infra"], report["success_rate"]) == (len(TEMPLATES), 0, 1.0), failures
