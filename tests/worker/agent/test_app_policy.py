"""App allowlists in the agent core (worker/agent/app_policy.py), on a real virtual phone over the
real adb server with a scripted model server: a Launch outside the allowed apps is refused and the
model is told; reaching another app by a tap (not a Launch) asks a person."""

from __future__ import annotations

from device_pool.driver import AdbDevice
from tests.aio import run
from tests.ui import find
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.agent.test_loop import Recorder, client
from worker.agent.app_policy import REFUSED, AppPolicy
from worker.agent.loop import run_agent
from worker.agent.results import RunStatus

SETTINGS = "com.android.settings"


def test_app_policy_of_intersects_the_lists_given() -> None:
    assert AppPolicy.of(None, None) is None
    assert AppPolicy.of(["a.b", "c.d"], None) == AppPolicy(frozenset({"a.b", "c.d"}))
    assert AppPolicy.of(["a.b", "c.d"], ["c.d", "e.f"]) == AppPolicy(frozenset({"c.d"}))
    policy = AppPolicy.of([], None)
    assert policy is not None and not policy.allows("a.b") and policy.allows("com.android.launcher3")


def test_a_launch_outside_allowed_apps_is_refused_and_the_model_told(fresh_device: AdbDevice) -> None:
    async def body():
        await fresh_device.key("home")
        await fresh_device.wait_for_settle(interval=0.3)
        hooks = Recorder()
        replies = [Reply('do(action="Launch", app="Contacts")'), Reply('do(action="Launch", app="Settings")'),
                   Reply('finish(message="done")')]  # fmt: skip
        with serve(ModelServer(*replies)) as server:
            async with client(server.base_url) as model:
                result = await run_agent(
                    "Open Contacts",
                    fresh_device,
                    model,
                    hooks=hooks,
                    app_policy=AppPolicy(frozenset({SETTINGS})),
                )
            return result, hooks, server.requests, (await fresh_device.foreground())[0]

    result, hooks, requests, front = run(body())
    assert result.status == RunStatus.SUCCEEDED, result
    assert [s.result for s in result.steps] == [REFUSED, "ok", "ok"]
    assert front == SETTINGS  # Contacts never opened; Settings did
    first = requests[0].body["messages"][-1]["content"][-1]["text"]
    assert "You may use only these apps" in first and SETTINGS in first
    told = requests[1].body["messages"][-1]["content"][-1]["text"]
    assert "com.android.contacts" in told and "was not opened" in told and SETTINGS in told
    assert hooks.questions == []


def test_leaving_the_allowed_apps_by_a_tap_asks_a_person(fresh_device: AdbDevice) -> None:
    async def body():
        await fresh_device.key("home")
        await fresh_device.wait_for_settle(interval=0.3)
        # The Contacts icon on the home screen, on the model's 0-999 grid.
        x, y = find(await fresh_device.ui_dump(), text="Contacts").center
        w, h = await fresh_device.screen_size()
        tap = f'do(action="Tap", element=[{x * 1000 // w}, {y * 1000 // h}])'
        hooks = Recorder(answer="Go back home and stop")
        replies = [Reply(tap), Reply('do(action="Home")'), Reply('finish(message="stopped")')]
        with serve(ModelServer(*replies)) as server:
            async with client(server.base_url) as model:
                result = await run_agent(
                    "Look around",
                    fresh_device,
                    model,
                    hooks=hooks,
                    app_policy=AppPolicy(frozenset({SETTINGS})),
                )
            return result, hooks, server.requests

    result, hooks, requests = run(body())
    assert result.status == RunStatus.SUCCEEDED, result
    [question] = hooks.questions
    assert "left the apps this task may use" in question and "com.android.contacts" in question, question
    # The tap was carried out; the next step asked before the model was called again.
    assert [s.result for s in result.steps] == ["ok", "left allowed_apps: asked the user", "ok", "ok"]
    assert result.steps[1].action is None
    assert "Go back home and stop" in requests[1].body["messages"][-1]["content"][-1]["text"]
    assert len(requests) == 3  # asking a person cost no model call
