"""Each model family end to end: the agent speaks it to the reference model speaking it, over HTTP, on
the virtual phone, and the request it sent has the family's documented shape.

The shapes below are written from each family's own published description (docs/models.md names
the sources): where the instructions go, where the screenshot goes, how earlier steps travel, and
for ``mobile_use`` the tool schema in the system text. The recorder only notes the messages the
real model client is given; every request still goes over HTTP to a real reference model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run
from tests.processes import REPO, AdbServer, ReferenceModel, SimPhones, start_reference_model
from worker.agent.loop import AgentConfig, run_agent
from worker.agent.model_client import ModelClient, ModelClientConfig, ModelEndpoint
from worker.agent.results import RunStatus

TASK = "Open Settings and turn on Wi-Fi"


class Recorder:
    """The real model client, noting the messages of each request it sends."""

    def __init__(self, client: ModelClient) -> None:
        self.client = client
        self.requests: list[list[dict[str, Any]]] = []

    async def chat(self, messages, *, on_retry=None):
        self.requests.append(messages)
        return await self.client.chat(messages, on_retry=on_retry)

    async def encode_image(self, image):
        return await self.client.encode_image(image)


def run_recorded(base_url: str, device: AdbDevice, config: AgentConfig, task: str = TASK):
    async def body():
        client_config = ModelClientConfig(
            endpoints=[ModelEndpoint(base_url=base_url, model="autoglm-phone-9b")]
        )
        async with ModelClient(client_config) as client:
            recorder = Recorder(client)
            result = await run_agent(task, device, recorder, config=config)
            return result, recorder.requests

    return run(body(), timeout=300)


@pytest.fixture(scope="module")
def family_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ReferenceModel]]:
    """A reference model for each family other than autoglm (the shared one speaks autoglm)."""
    folder = tmp_path_factory.mktemp("families")
    servers = {f: start_reference_model(folder, family=f) for f in ("ui-tars", "qwen-mobile-use", "qwen3-mobile-use")}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _parts(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    return ["text"] if isinstance(content, str) else [p["type"] for p in content]


def check_autoglm(requests: list[list[dict[str, Any]]], task: str = TASK) -> None:
    # Open-AutoGLM: system prompt; user turns [image, text]; only the newest screenshot is kept;
    # earlier replies as <think>…</think><answer>…</answer>.
    last = requests[-1]
    assert [m["role"] for m in last][:2] == ["system", "user"]
    assert _parts(last[-1]) == ["image_url", "text"]
    assert sum(_parts(m).count("image_url") for m in last) == 1
    assistants = [m["content"] for m in last if m["role"] == "assistant"]
    assert assistants and all(a.startswith("<think>") and "<answer>do(" in a for a in assistants)


def check_ui_tars(requests: list[list[dict[str, Any]]], task: str = TASK) -> None:
    # bytedance/UI-TARS (training example, README_deploy): a plain system turn; the prompt and the
    # user's instruction as the first user turn, text only; earlier replies "Thought: …\nAction: …"
    # with box tokens put back; the screenshot in the last user turn.
    last = requests[-1]
    assert last[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert last[1]["role"] == "user" and isinstance(last[1]["content"], str)
    assert last[1]["content"].rstrip().endswith(task) and "click(start_box=" in last[1]["content"]
    assert last[-1]["role"] == "user" and _parts(last[-1])[0] == "image_url"
    assert sum(_parts(m).count("image_url") for m in last) == 1
    assistants = [m["content"] for m in last if m["role"] == "assistant"]
    assert assistants and all(a.startswith("Thought: ") and "\nAction: " in a for a in assistants)
    assert any("<|box_start|>(" in a for a in assistants)


def check_qwen(
    requests: list[list[dict[str, Any]]], task: str = TASK, announced: tuple[int, int] | None = None
) -> None:
    # QwenLM/Qwen2.5-VL mobile agent cookbook: the mobile_use function schema in the system text
    # between <tools> tags (not in tools=); one user turn, the screenshot then the task and the
    # steps done so far as text (its API example; Qwen3-VL's puts the text first); no assistant turns.
    last = requests[-1]
    assert [m["role"] for m in last] == ["system", "user"]
    system = last[0]["content"]
    tools = system[system.index("<tools>\n") + 8 : system.index("\n</tools>")]
    schema = json.loads(tools)
    assert schema["type"] == "function" and schema["function"]["name"] == "mobile_use"
    params = schema["function"]["parameters"]
    assert params["required"] == ["action"]
    assert {"click", "long_press", "swipe", "type", "system_button", "open", "wait", "terminate"} <= set(
        params["properties"]["action"]["enum"]
    )
    assert {"coordinate", "coordinate2", "text", "time", "button", "status"} <= set(params["properties"])
    assert "<tool_call>" in system
    parts = ["text", "image_url"] if announced else ["image_url", "text"]
    assert _parts(last[1]) == parts
    text = last[1]["content"][parts.index("text")]["text"]
    assert text.startswith(f"Task: {task}\n") and 'Step 1: {"name": "mobile_use", "arguments": {' in text
    # The resolution it announces is the image's: the client resized it as the server would.
    width, height = (
        int(v) for v in schema["function"]["description"].split("resolution is ")[1].rstrip(".").split("x")
    )
    if announced is not None:
        assert (width, height) == announced
    else:
        assert width % 28 == 0 and height % 28 == 0


def check_qwen3(requests: list[list[dict[str, Any]]], task: str = TASK) -> None:
    # QwenLM/Qwen3-VL mobile agent cookbook: Qwen2.5-VL's shape, the resolution given as 999x999.
    check_qwen(requests, task, announced=(999, 999))


CHECKS = {"autoglm": check_autoglm, "ui-tars": check_ui_tars, "qwen-mobile-use": check_qwen,
          "qwen3-mobile-use": check_qwen3}  # fmt: skip


CONTACT = "Open Contacts and add a contact named Ada Lovelace with phone number 5550100"
NOTE = "Open Notes and create a note titled 'Groceries' with the text 'milk, eggs'"


async def _wifi_on(device: AdbDevice) -> bool:
    return (await device.shell("settings get global wifi_on")).stdout.strip() == "1"


async def _contact_added(device: AdbDevice) -> bool:
    where = "content query --uri content://contacts/phones --where \"display_name='Ada Lovelace'\""
    found = [line for line in (await device.shell(where)).stdout.splitlines() if line.startswith("Row:")]
    return len(found) == 1 and "5550100" in found[0]


async def _note_saved(device: AdbDevice) -> bool:
    return (await device.shell("cat /sdcard/Notes/Groceries.txt")).stdout == "milk, eggs"


# What each task changes on the phone, checked there (the tasks of tests/worker/test_tasks_e2e.py).
TASKS = {TASK: _wifi_on, CONTACT: _contact_added, NOTE: _note_saved}


# autoglm's own runs are tests/worker/test_tasks_e2e.py; its request shape is checked below.
# Qwen3-VL's mobile_use differs from Qwen2.5-VL's only in its coordinates: Wi-Fi alone checks them.
CASES = [(f, t) for f in ("ui-tars", "qwen-mobile-use") for t in TASKS] + [("qwen3-mobile-use", TASK)]


@pytest.mark.parametrize(("family", "task"), CASES, ids=[f"{f}-{TASKS[t].__name__[1:]}" for f, t in CASES])
def test_each_family_does_the_task_and_sends_its_documented_shape(
    family: str,
    task: str,
    family_models: dict[str, ReferenceModel],
    reference_model: ReferenceModel,
    fresh_device: AdbDevice,
) -> None:
    run(fresh_device.shell("settings put global wifi_on 0", check=True))
    server = family_models[family]
    result, requests = run_recorded(
        server.base_url, fresh_device, AgentConfig(max_steps=20, budget_s=200, family=family), task=task
    )
    assert result.status == RunStatus.SUCCEEDED, (result, [s.action_text for s in result.steps])
    assert run(TASKS[task](fresh_device))
    assert len(requests) >= 2
    CHECKS[family](requests, task)


@pytest.fixture(scope="module")
def pair_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReferenceModel, ReferenceModel]]:
    """Two reference models: a planner, and a grounder speaking ui-tars (a family that resizes)."""
    folder = tmp_path_factory.mktemp("pair")
    planner = start_reference_model(folder, role="planner")
    try:
        grounder = start_reference_model(folder, family="ui-tars", role="grounder")
    except BaseException:
        planner.stop()
        raise
    try:
        yield planner, grounder
    finally:
        planner.stop()
        grounder.stop()


@pytest.mark.parametrize("task", list(TASKS), ids=["wifi", "contact", "note"])
def test_a_planner_grounder_pair_does_the_task_and_each_step_shows_both_replies(
    task: str, pair_models: tuple[ReferenceModel, ReferenceModel], fresh_device: AdbDevice
) -> None:
    run(fresh_device.shell("settings put global wifi_on 0", check=True))
    planner, grounder = pair_models

    async def body():
        def config(server: ReferenceModel) -> ModelClientConfig:
            return ModelClientConfig(endpoints=[ModelEndpoint(base_url=server.base_url, model="autoglm-phone-9b")])

        async with ModelClient(config(planner)) as planning, ModelClient(config(grounder)) as grounding:
            recorder = Recorder(grounding)
            agent_config = AgentConfig(max_steps=20, budget_s=200, grounder_family="ui-tars")
            result = await run_agent(task, fresh_device, planning, config=agent_config, grounder=recorder)
            return result, recorder.requests

    result, grounder_requests = run(body(), timeout=300)
    assert result.status == RunStatus.SUCCEEDED, (result, [(s.action_text, s.replies) for s in result.steps])
    assert run(TASKS[task](fresh_device))
    pointed = [s for s in result.steps if s.action and any(k in s.action for k in ("element", "start"))]
    assert pointed, [s.action_text for s in result.steps]
    for step in result.steps:
        roles = [r["role"] for r in step.replies or []]
        assert roles[:1] == ["planner"] and "<answer>" in step.replies[0]["reply"]
        assert step.timings.planner_s is not None
    for step in pointed:
        planned, *grounded = step.replies
        assert grounded and all(r["role"] == "grounder" and r["reply"].startswith("Thought: ") for r in grounded)
        assert f'="{grounded[0]["target"]}' in planned["reply"].replace('\\"', '"')  # the planner wrote it in words
        assert step.timings.grounder_s is not None and step.to_json()["replies"] == step.replies
    # The grounder was asked in its family's shape, one target per request.
    assert len(grounder_requests) == sum(len(s.replies) - 1 for s in result.steps)
    first = grounder_requests[0]
    assert first[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert first[1]["content"].rstrip().endswith(pointed[0].replies[1]["target"])


def test_a_planner_that_reads_no_images_is_told_the_screen_in_words(
    pair_models: tuple[ReferenceModel, ReferenceModel], fresh_device: AdbDevice
) -> None:
    planner, grounder = pair_models

    async def body():
        def config(server: ReferenceModel) -> ModelClientConfig:
            return ModelClientConfig(endpoints=[ModelEndpoint(base_url=server.base_url, model="autoglm-phone-9b")])

        async with ModelClient(config(planner)) as planning, ModelClient(config(grounder)) as grounding:
            recorder = Recorder(planning)
            agent_config = AgentConfig(max_steps=1, budget_s=60, grounder_family="ui-tars", planner_vision=False)
            result = await run_agent("Open Settings", fresh_device, recorder, config=agent_config, grounder=grounding)
            return result, recorder.requests

    result, requests = run(body(), timeout=120)
    [messages] = requests
    assert all(isinstance(m["content"], str) for m in messages), messages  # no image part anywhere
    assert '"Settings"' in messages[-1]["content"].split("The screen shows: ")[1]  # the launcher's label
    # The reference planner reads the screen from the image alone: with none it answers no action.
    assert result.steps[0].result.startswith("parse error") and result.steps[0].replies[0]["role"] == "planner"


def test_an_endpoints_prompt_file_is_what_the_server_receives_in_autoglms_shape(
    reference_model: ReferenceModel, fresh_device: AdbDevice, tmp_path: Path
) -> None:
    from orchestrator.settings import EndpointSettings, ModelSettings
    from worker.run.endpoints import endpoint_run

    prompt = tmp_path / "prompt.txt"
    prompt.write_text(
        "Operator prompt of {date} ({lang}).\nActions:\n{actions}\nKeep {braces} as they are.", "utf-8"
    )
    ep = EndpointSettings(
        name="mine", base_url=reference_model.base_url, model="autoglm-phone-9b", prompt_file=prompt
    )
    endpoint = endpoint_run(ep, ModelSettings(endpoints=[ep]))
    config = AgentConfig(max_steps=2, budget_s=60, family=endpoint.family, prompt=endpoint.prompt)
    _result, requests = run_recorded(reference_model.base_url, fresh_device, config, task="Open Settings")
    assert len(requests) == 2
    check_autoglm(requests)
    system = requests[0][0]
    assert system["role"] == "system"
    assert system["content"].startswith("Operator prompt of ") and "({lang})" not in system["content"]
    assert "(en)" in system["content"] and 'do(action="Tap", element=[x,y])' in system["content"]
    assert system["content"].endswith("Keep {braces} as they are.") and "{date}" not in system["content"]


def test_phonefleet_run_with_family_turns_wifi_on(
    fresh_phone: SimPhones,
    adb_server: AdbServer,
    family_models: dict[str, ReferenceModel],
    fresh_device: AdbDevice,
    tmp_path: Path,
) -> None:
    run(fresh_device.shell("settings put global wifi_on 0", check=True))
    server = family_models["ui-tars"]
    cmd = [sys.executable, "-m", "orchestrator.cli", "run", TASK, "--device", fresh_phone.serial(), "--family", "ui-tars",
           "--adb-port", str(adb_server.port), "--model-url", server.base_url, "--max-steps", "12",
           "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(fresh_device.shell("settings get global wifi_on")).stdout.strip() == "1"
