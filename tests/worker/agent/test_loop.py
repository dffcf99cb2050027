"""The step loop against a real virtual phone (over the real adb server) and a real model server.

The model server is scripted (tests/worker/agent/model_servers.py) so each test decides exactly
what the "model" says; everything else — HTTP, parsing, the driver, the phone — is real.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run, until
from tests.ui import find
from tests.worker.agent.model_servers import Hang, ModelServer, Reply, Status, dead_url, serve
from worker.agent.loop import AgentConfig, run_agent
from worker.agent.model_client import ModelClient, ModelClientConfig, ModelEndpoint
from worker.agent.results import FailReason, RunStatus
from worker.agent.steering import AgentHooks, AgentState, AgentSteering
from worker.agent.trajectory_files import TrajectoryWriter

WIFI_ROW = 'do(action="Tap", element=[900, 120])'  # the Wi-Fi switch on the Settings page (1080x2400)


def client(url: str, **kw) -> ModelClient:
    cfg = dict(backoff_base_s=0.05, backoff_max_s=0.2, request_timeout_s=5, first_token_timeout_s=5)
    cfg.update(kw)
    return ModelClient(ModelClientConfig(endpoints=[ModelEndpoint(base_url=url, model="test")], **cfg))


async def wifi_switch_point(device: AdbDevice) -> str:
    """The Wi-Fi switch's centre on the 0-999 grid, read from the phone's own UI dump."""
    x, y = find(await device.ui_dump(), rid="switch_wifi").center
    w, h = await device.screen_size()
    return f"[{x * 1000 // w}, {y * 1000 // h}]"


class Recorder(AgentHooks):
    def __init__(
        self, confirm: bool = False, takeover_note: str | None = None, answer: str | None = None
    ) -> None:
        self.states: list[AgentState] = []
        self.steps = []
        self.confirm = confirm
        self.takeover_note = takeover_note
        self.answer = answer
        self.confirmations: list[str] = []
        self.element_labels: list[str | None] = []
        self.takeovers: list[str] = []
        self.questions: list[str] = []
        self.steps_when_asked: list[list[tuple[int, str]]] = []  # (index, result) of the steps seen

    async def ask_user(self, question: str) -> str | None:
        self.questions.append(question)
        self.steps_when_asked.append([(s.index, s.result) for s in self.steps])
        return self.answer

    async def on_step(self, step) -> None:
        self.steps.append(step)

    async def on_state(self, state: AgentState, detail: str = "") -> None:
        self.states.append(state)

    async def request_confirmation(self, action, message: str, element_label: str | None = None) -> bool:
        self.confirmations.append(message)
        self.element_labels.append(element_label)
        return self.confirm

    async def request_takeover(self, message: str) -> str | None:
        self.takeovers.append(message)
        return self.takeover_note


def test_a_scripted_run_turns_wifi_off_and_records_every_step(
    fresh_device: AdbDevice, tmp_path: Path
) -> None:
    async def body() -> None:
        await fresh_device.launch("Settings")
        await fresh_device.wait_for_settle(interval=0.3)
        point = await wifi_switch_point(fresh_device)
        await fresh_device.key("home")
        script = [
            Reply('<think>Open Settings.</think><answer>do(action="Launch", app="Settings")</answer>'),
            Reply(f'<think>Tap the Wi-Fi switch.</think><answer>do(action="Tap", element={point})</answer>'),
            Reply('<think>Wi-Fi is off.</think><answer>finish(message="Wi-Fi is off")</answer>'),
        ]
        writer = TrajectoryWriter(tmp_path / "traj")
        hooks = Recorder()
        hooks.on_step = writer.write_step  # type: ignore[method-assign]
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Turn off Wi-Fi", fresh_device, model, hooks=hooks)
            requests = server.requests
        assert result.status == RunStatus.SUCCEEDED, result
        assert result.message == "Wi-Fi is off"
        assert (await fresh_device.shell("settings get global wifi_on")).stdout.strip() == "0"
        assert [s.action["name"] for s in result.steps] == ["Launch", "Tap", "finish"]
        assert result.steps[1].current_app == "Settings"
        assert all(s.timings.model_s > 0 and s.timings.image_bytes > 0 for s in result.steps)
        assert result.steps[1].timings.settle_s > 0
        # One image per request, and earlier turns kept as canonical text.
        last = requests[-1].body["messages"]
        images = [
            p
            for m in last
            if isinstance(m["content"], list)
            for p in m["content"]
            if p["type"] == "image_url"
        ]
        assert len(images) == 1
        assistant = [m["content"] for m in last if m["role"] == "assistant"]
        assert (
            assistant[0]
            == '<think>Open Settings.</think><answer>do(action="Launch", app="Settings")</answer>'
        )
        await writer.write_result("Turn off Wi-Fi", result)
        lines = (tmp_path / "traj" / "trajectory.jsonl").read_text().splitlines()
        assert len(lines) == 3 and all(
            (tmp_path / "traj" / json.loads(x)["screenshot"]).exists() for x in lines
        )
        assert json.loads((tmp_path / "traj" / "result.json").read_text())["status"] == "succeeded"

    run(body())


def test_garbage_replies_end_as_parse_failure_never_success(fresh_device: AdbDevice) -> None:
    garbage = Reply("I think the answer is " + "very " * 200, usage=None)

    async def body() -> None:
        with serve(ModelServer(default=garbage)) as server:
            async with client(server.base_url) as model:
                return await run_agent(
                    "Do something", fresh_device, model, config=AgentConfig(max_parse_errors=3)
                )

    result = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.PARSE_ERRORS
    assert len(result.steps) == 3 and all(s.action is None for s in result.steps)


def test_a_server_that_fails_twice_is_retried_and_the_run_succeeds(fresh_device: AdbDevice) -> None:
    async def body():
        server = ModelServer(Status(500), Status(503), Reply('finish(message="done")'))
        with serve(server):
            async with client(server.base_url) as model:
                return await run_agent("Say done", fresh_device, model), len(server.requests)

    result, requests = run(body())
    assert result.status == RunStatus.SUCCEEDED and requests == 3


def test_a_model_server_that_is_down_fails_clearly_within_the_budget(fresh_device: AdbDevice) -> None:
    async def body():
        async with client(dead_url(), max_retries=2) as model:
            return await run_agent("Anything", fresh_device, model, config=AgentConfig(budget_s=20))

    result = run(body())
    # the model's failure ends the run, not the budget running out (that would be a timeout)
    assert result.status == RunStatus.FAILED and result.reason == FailReason.MODEL_UNAVAILABLE
    assert "cannot connect" in result.message or "connect" in result.message.lower()


class OutageRecorder(AgentHooks):
    """What the run told of the model server's failures: (failure, until) per call."""

    def __init__(self) -> None:
        self.reports: list[tuple[str | None, dt.datetime | None]] = []

    async def on_model_unavailable(self, failure: str | None, until: dt.datetime | None = None) -> None:
        self.reports.append((failure, until))


def test_a_model_server_down_for_a_while_is_waited_for_within_the_outage_budget(
    fresh_device: AdbDevice,
) -> None:
    # Six 503s: three calls' worth of the client's own retries (max_retries=1), each call failing;
    # the run waits out the outage instead of ending, and the seventh request is answered.
    outage = [Status(503, "overloaded")] * 6
    config = AgentConfig(
        model_outage_budget_s=60, model_outage_backoff_s=0.05, model_outage_backoff_max_s=0.1
    )

    async def body():
        hooks = OutageRecorder()
        with serve(ModelServer(*outage, Reply('finish(message="done")'))) as server:
            async with client(server.base_url, max_retries=1) as model:
                result = await run_agent("Say done", fresh_device, model, config=config, hooks=hooks)
            return result, hooks.reports, len(server.requests)

    result, reports, requests = run(body())
    assert result.status == RunStatus.SUCCEEDED and requests == 7, (result, requests)
    failing, back = reports[:-1], reports[-1]
    assert back == (None, None) and len(failing) >= 3 and all("HTTP 503" in f for f, _ in failing), reports
    # Every report says until when the run waits: one moment, the outage's start plus the budget.
    untils = {until for _, until in failing}
    assert None not in untils and max(untils) - min(untils) < dt.timedelta(seconds=1), untils


def test_past_the_outage_budget_the_run_ends_model_unavailable(fresh_device: AdbDevice) -> None:
    config = AgentConfig(budget_s=120, model_outage_budget_s=1.5, model_outage_backoff_s=0.1)

    async def body():
        async with client(dead_url(), max_retries=1) as model:
            started = time.monotonic()
            result = await run_agent("Anything", fresh_device, model, config=config)
            return result, time.monotonic() - started

    result, took_s = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.MODEL_UNAVAILABLE, result
    assert "outage budget of 1.5 s" in result.message, result.message
    assert took_s >= 1.5  # it waited the budget out first


def test_a_model_reply_no_retry_can_fix_ends_model_error_at_once(fresh_device: AdbDevice) -> None:
    config = AgentConfig(model_outage_budget_s=60)

    async def body():
        with serve(ModelServer(default=Status(404, "no such model"))) as server:
            async with client(server.base_url) as model:
                return await run_agent("Anything", fresh_device, model, config=config), len(server.requests)

    result, requests = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.MODEL_ERROR and requests == 1


def test_cancel_during_a_model_call_interrupts_it(fresh_device: AdbDevice) -> None:
    # The model would hang for 300 s and the client wait 300 s: a run that ends within the 60 s
    # deadline was cut off mid-call, and the server saw the client hang up on its unanswered request.
    async def body():
        server = ModelServer(default=Hang(limit_s=300))
        steering = AgentSteering()
        with serve(server):
            async with client(server.base_url, request_timeout_s=300, first_token_timeout_s=300) as model:
                task = asyncio.ensure_future(
                    run_agent("Wait forever", fresh_device, model, steering=steering)
                )
                await until(lambda: server.requests, timeout=30, what="the model call is in flight")
                steering.cancel("user cancelled")
                result = await asyncio.wait_for(task, 60)
                await until(lambda: server.disconnects == 1, timeout=30, what="the server saw the hang-up")
                return result, len(server.requests)

    result, requests = run(body())
    assert result.status == RunStatus.CANCELLED and result.message == "user cancelled"
    assert requests == 1  # cancelled, not retried


def test_the_same_action_on_the_same_screen_is_stuck(fresh_device: AdbDevice) -> None:
    # Tapping the status bar changes nothing: the loop must notice and stop.
    tap = Reply('<think>Tap.</think><answer>do(action="Tap", element=[500, 2])</answer>')

    async def body():
        with serve(ModelServer(default=tap)) as server:
            async with client(server.base_url) as model:
                return await run_agent(
                    "Tap forever", fresh_device, model, config=AgentConfig(stuck_repeats=3)
                )

    result = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.STUCK
    assert len(result.steps) == 3


def test_max_steps_ends_the_run(fresh_device: AdbDevice) -> None:
    replies = [Reply('do(action="Home")'), Reply('do(action="Back")')] * 5

    async def body():
        with serve(ModelServer(*replies)) as server:
            async with client(server.base_url) as model:
                # Home, Back, Home, Back on the home screen is a loop: the loop rules are off here.
                config = AgentConfig(max_steps=4, stuck_repeats=10, stuck_cycle_repeats=0, stuck_no_change=0)
                return await run_agent("Wander", fresh_device, model, config=config)

    result = run(body())
    assert (
        result.status == RunStatus.FAILED and result.reason == FailReason.MAX_STEPS and len(result.steps) == 4
    )


@pytest.mark.parametrize("approve", [False, True])
def test_a_sensitive_tap_waits_for_confirmation(fresh_device: AdbDevice, approve: bool) -> None:
    async def body():
        await fresh_device.launch("Settings")
        await fresh_device.wait_for_settle(interval=0.3)
        point = await wifi_switch_point(fresh_device)
        script = [
            Reply(f'do(action="Tap", element={point}, message="Turn off Wi-Fi")'),
            Reply('finish(message="ok")'),
        ]
        hooks = Recorder(confirm=approve)
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Turn off Wi-Fi", fresh_device, model, hooks=hooks)
        wifi = (await fresh_device.shell("settings get global wifi_on")).stdout.strip()
        return result, hooks, wifi

    result, hooks, wifi = run(body())
    assert hooks.confirmations == ["Turn off Wi-Fi"]
    assert AgentState.AWAITING_CONFIRMATION in hooks.states
    if approve:
        assert result.status == RunStatus.SUCCEEDED and wifi == "0"
    else:
        assert result.status == RunStatus.FAILED and result.reason == FailReason.DENIED and wifi == "1"


def test_take_over_hands_back_with_a_note_or_ends_as_needs_user(fresh_device: AdbDevice) -> None:
    script = [Reply('do(action="Take_over", message="Please log in")'), Reply('finish(message="logged in")')]

    async def body(note):
        hooks = Recorder(takeover_note=note)
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Log in", fresh_device, model, hooks=hooks)
            second = server.requests[1].body if len(server.requests) > 1 else None
        return result, hooks, second

    result, hooks, second = run(body("done, password saved"))
    assert hooks.takeovers == ["Please log in"] and AgentState.WAITING_FOR_USER in hooks.states
    assert result.status == RunStatus.SUCCEEDED
    last_user = second["messages"][-1]["content"][-1]["text"]
    assert "done, password saved" in last_user

    result, hooks, _ = run(body(None))
    assert result.status == RunStatus.FAILED and result.reason == FailReason.NEEDS_USER


def test_pause_mid_call_then_resume_with_a_note(fresh_device: AdbDevice) -> None:
    async def body():
        server = ModelServer(Hang(limit_s=30), Reply('finish(message="thanks")'))
        steering = AgentSteering()
        hooks = Recorder()
        with serve(server):
            async with client(server.base_url, request_timeout_s=60, first_token_timeout_s=60) as model:
                task = asyncio.ensure_future(
                    run_agent("Do it", fresh_device, model, steering=steering, hooks=hooks)
                )
                await until(lambda: server.requests, timeout=10, what="the model call is in flight")
                steering.pause()
                await until(lambda: AgentState.USER_CONTROL in hooks.states, timeout=10, what="paused")
                steering.resume("I opened the app for you")
                result = await task
            return result, hooks, server.requests[-1].body

    result, _hooks, last = run(body())
    assert result.status == RunStatus.SUCCEEDED and result.step_count == 1
    assert "I opened the app for you" in last["messages"][-1]["content"][-1]["text"]


# Settings opened from the home screen, then home again: the screens change, but the pairs of
# (screen, action) come round again — a loop of two.
SETTINGS_AND_BACK = [Reply('do(action="Launch", app="Settings")'), Reply('do(action="Home")')] * 2


def test_a_cycle_of_two_actions_asks_the_user_and_their_answer_reaches_the_model(
    fresh_device: AdbDevice,
) -> None:
    async def body():
        await fresh_device.key("home")
        await fresh_device.wait_for_settle(interval=0.3)
        hooks = Recorder(answer="Wi-Fi is under Network")
        with serve(ModelServer(*SETTINGS_AND_BACK, Reply('finish(message="done")'))) as server:
            async with client(server.base_url) as model:
                result = await run_agent("Find Wi-Fi", fresh_device, model, hooks=hooks)
            return result, hooks, server.requests

    result, hooks, requests = run(body())
    assert result.status == RunStatus.SUCCEEDED, result
    [question] = hooks.questions
    assert (
        question.startswith("I'm stuck on Settings: I tried ") and "please do it or tell me how" in question
    )
    assert 'Launch(app="Settings")' in question and "Home" in question and "a loop of 2 actions" in question
    assert AgentState.ASKING_USER in hooks.states
    # The step that asks was recorded when it asked (with its screenshot), and again once answered.
    assert hooks.steps_when_asked == [[(1, "ok"), (2, "ok"), (3, "ok"), (4, "waiting")]]
    assert hooks.steps[3].screenshot is not None
    assert [(s.index, s.result) for s in result.steps] == [
        (1, "ok"), (2, "ok"), (3, "ok"), (4, "stuck: asked the user"), (5, "ok"),
    ]  # fmt: skip
    assert "Wi-Fi is under Network" in result.steps[3].note
    # The looping action was not carried out, and the answer is in the model's next turn.
    assert "Wi-Fi is under Network" in requests[4].body["messages"][-1]["content"][-1]["text"]


def test_a_cycle_with_on_stuck_fail_ends_failed_stuck(fresh_device: AdbDevice) -> None:
    async def body():
        await fresh_device.key("home")
        await fresh_device.wait_for_settle(interval=0.3)
        hooks = Recorder(answer="never asked")
        with serve(ModelServer(*SETTINGS_AND_BACK, default=Reply('finish(message="done")'))) as server:
            async with client(server.base_url) as model:
                config = AgentConfig(on_stuck="fail")
                return await run_agent("Find Wi-Fi", fresh_device, model, hooks=hooks, config=config), hooks

    result, hooks = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.STUCK, result
    assert "a loop of 2 actions" in result.message and hooks.questions == []
    assert result.steps[-1].result == "stuck" and len(result.steps) == 4


def test_actions_that_change_nothing_ask_the_user(fresh_device: AdbDevice) -> None:
    # Taps on the status bar, each at another point: no one action repeats, none changes the screen.
    taps = [Reply(f'do(action="Tap", element=[{x}, 2])') for x in (200, 400, 600, 800, 900)]

    async def body():
        hooks = Recorder(answer=None)  # nobody to ask: the run ends stuck
        with serve(ModelServer(*taps)) as server:
            async with client(server.base_url) as model:
                return await run_agent("Tap around", fresh_device, model, hooks=hooks), hooks

    result, hooks = run(body())
    assert result.status == RunStatus.FAILED and result.reason == FailReason.STUCK, result
    [question] = hooks.questions
    assert "4 actions in a row changed nothing on screen" in question, question
    assert "Tap(element=[200, 2])" in question and "Tap(element=[800, 2])" in question
    assert [s.result for s in result.steps] == ["ok"] * 4 + ["stuck: nobody to ask"]


def test_a_finish_saying_it_cannot_asks_instead_of_succeeding(fresh_device: AdbDevice) -> None:
    script = [Reply('finish(message="I cannot find the Notes app")'), Reply('finish(message="note written")')]

    async def body(answer):
        hooks = Recorder(answer=answer)
        with serve(ModelServer(*script)) as server:
            async with client(server.base_url) as model:
                return await run_agent("Write a note", fresh_device, model, hooks=hooks), hooks

    result, hooks = run(body("It is the yellow icon"))
    assert result.status == RunStatus.SUCCEEDED and result.message == "note written", result
    assert hooks.questions == [
        "I can't do this by myself: I cannot find the Notes app; please do it or tell me how."
    ]
    assert result.steps[0].result == "cannot: asked the user"

    result, hooks = run(body(None))  # nobody to ask: not a success
    assert result.status == RunStatus.FAILED and result.reason == FailReason.NEEDS_USER, result
