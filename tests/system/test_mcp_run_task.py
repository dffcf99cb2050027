"""``run_task`` over MCP: the tool submits a task to a fleet of real processes (``phonefleet api``,
``pool``, ``worker``, a scripted reference model) through ``phonefleet mcp``, waits for it and
answers its steps."""

from __future__ import annotations

from pathlib import Path

from tests.aio import run
from tests.orchestrator.mcp_server.test_mcp import call, stdio_session
from tests.system.conftest import Fleet


def test_run_task_waits_for_the_task_and_answers_its_steps(start_fleet, tmp_path: Path) -> None:
    fleet: Fleet = start_fleet(1)
    model = fleet.start_model(['do(action="Launch", app="Settings")', 'finish(message="Settings is open")'])
    fleet.start_worker(model.base_url)

    async def scenario() -> dict:
        with open(tmp_path / "mcp.stderr", "w") as errlog:
            async with stdio_session(fleet.url, fleet.key, errlog) as mcp:
                return await call(mcp, "run_task", instruction="Open Settings", max_steps=5, timeout_s=120)

    done = run(scenario(), timeout=240)
    assert done["status"] == "succeeded", (done, fleet.tails())
    assert done["message"] == "Settings is open"
    actions = [s["action"] for s in done["steps"]]
    assert actions == ['do(action="Launch", app="Settings")', 'finish(message="Settings is open")'], done
    assert done["steps"][0]["actor"] == "agent" and [s["index"] for s in done["steps"]] == [0, 1]
    assert fleet.http.get(f"/api/v1/tasks/{done['task_id']}").json()["status"] == "succeeded"
