"""The MCP server for real: the ``mcp`` SDK's own client drives ``phonefleet mcp`` (a subprocess, over
stdio) and the API's ``/mcp`` (streamable HTTP), against a running API whose pool holds a virtual phone.
The phone's state is read back with adb, not through the tools.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from orchestrator.db import TaskStatus, Tenant
from orchestrator.db.database import Database
from tests.aio import run
from tests.databases import open_sessions, read_device_serial
from tests.orchestrator.api.conftest import Caller

# Reused, not copied: the device API's fixture (an API with a pool of one virtual phone).
from tests.orchestrator.api.test_device_api import PhoneApi, make_sim_provider, phone_api  # noqa: F401
from tests.orchestrator.factories import make_task
from worker.agent import actions as a
from worker.agent.steering import AgentState, AgentSteering
from worker.run.hooks import TaskHooks
from worker.run.rows import TaskRows

ROOT = Path(__file__).resolve().parents[3]
REQUIRED = {"start_session", "end_session", "keep_alive", "screenshot", "ui_tree", "tap", "swipe", "type_text",
            "press_key", "launch_app", "run_task", "list_devices", "answer_task", "list_personal_phones"}  # fmt: skip


def server_params(url: str, key: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env |= {"PHONEFLEET_URL": url, "PHONEFLEET_API_KEY": key, "PYTHONPATH": str(ROOT)}
    return StdioServerParameters(command=sys.executable, args=["-m", "orchestrator.cli", "mcp"], env=env, cwd=ROOT)


@asynccontextmanager
async def stdio_session(url: str, key: str, errlog: Any) -> AsyncIterator[ClientSession]:
    async with (
        stdio_client(server_params(url, key), errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """The tool's JSON answer (it must not be an error)."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    return json.loads(result.content[0].text)


async def failure(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The tool error's text, without the SDK's "Error executing tool NAME: " in front."""
    result = await session.call_tool(tool, arguments)
    assert result.is_error, (tool, result.content)
    return result.content[0].text.removeprefix(f"Error executing tool {tool}: ")


@asynccontextmanager
async def http_session(url: str, key: str) -> AsyncIterator[ClientSession]:
    """An MCP client session over the API's streamable HTTP, with ``key``."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def element(tree: dict[str, Any], **match: Any) -> dict[str, Any]:
    [found] = [e for e in tree["elements"] if all(e.get(k) == v for k, v in match.items())]
    return found


def test_an_mcp_client_drives_a_session_phone_over_stdio(phone_api: PhoneApi, tmp_path: Path) -> None:  # noqa: F811
    caller = phone_api.api.caller()
    stranger = phone_api.api.caller()

    async def scenario() -> None:
        with open(tmp_path / "mcp.stderr", "w") as errlog:
            async with stdio_session(phone_api.api.url, caller.key, errlog) as mcp:
                tools = {t.name: t for t in (await mcp.list_tools()).tools}
                assert set(tools) >= REQUIRED
                assert "session_id" in (tools["start_session"].description or "")
                assert not tools["start_session"].input_schema.get("required")  # callable with no arguments

                devices = await call(mcp, "list_devices")
                assert [d["state"] for d in devices] == ["idle"]
                session = await call(mcp, "start_session")
                sid = session["session_id"]
                assert session["screen"] == {"width": 720, "height": 1600} and session["state"] == "active"
                device_id = caller.http.get(f"/api/v1/sessions/{sid}").json()["device"]["id"]
                serial = await read_device_serial(phone_api.api.db_url, device_id)

                shot = await mcp.call_tool("screenshot", {"session_id": sid})
                assert not shot.is_error
                image, note = shot.content
                assert image.type == "image" and image.mime_type == "image/jpeg"
                assert Image.open(io.BytesIO(base64.b64decode(image.data))).size == (576, 1280)
                assert "720x1600" in note.text and "0.800" in note.text

                home = await call(mcp, "ui_tree", session_id=sid)
                settings_icon = element(home, text="Settings")
                tapped = await call(mcp, "tap", session_id=sid, element_id=settings_icon["id"])
                assert tapped["element"]["id"] == settings_icon["id"] and tapped["settled"] is True
                settings = await call(mcp, "ui_tree", session_id=sid)
                assert settings["package"] == "com.android.settings"
                wifi = element(settings, resource_id="com.android.settings:id/switch_wifi")
                assert wifi["checked"] is True
                assert await asyncio.to_thread(phone_api.shell, serial, "settings get global wifi_on") == "1"
                await call(mcp, "tap", session_id=sid, element_id=wifi["id"])
                assert await asyncio.to_thread(phone_api.shell, serial, "settings get global wifi_on") == "0"

                assert (await call(mcp, "press_key", session_id=sid, key="home"))["key"] == "home"
                launched = await call(mcp, "launch_app", session_id=sid, app="Notes")
                assert launched["package"] == "com.phonefleet.notes"
                assert (await call(mcp, "swipe", session_id=sid, direction="up"))["to"] == [360, 480]

                note = "Grüße\n"
                assert (await call(mcp, "push_file", session_id=sid, path="/sdcard/Download/a.txt", text=note))[
                    "bytes"] == len(note.encode())  # fmt: skip
                assert (await call(mcp, "pull_file", session_id=sid, path="/sdcard/Download/a.txt"))["text"] == note
                blob = bytes(range(256))
                await call(mcp, "push_file", session_id=sid, path="/sdcard/Download/b.bin",
                           base64_data=base64.b64encode(blob).decode())  # fmt: skip
                pulled = await call(mcp, "pull_file", session_id=sid, path="/sdcard/Download/b.bin")
                assert base64.b64decode(pulled["base64"]) == blob and "text" not in pulled
                escape = await failure(mcp, "pull_file", session_id=sid, path="/sdcard/../data/x")
                assert escape.startswith("422 path_not_allowed")
                assert "either text or base64_data" in await failure(mcp, "push_file", session_id=sid, path="/sdcard/c")

                # What the API refuses comes back as a tool error the model can read.
                gone = await failure(mcp, "tap", session_id=sid, element_id=wifi["id"])  # not on Notes
                assert gone.startswith("404 element_not_found") and "read the UI tree again" in gone
                off = await failure(mcp, "tap", session_id=sid, x=5000, y=10)
                assert off.startswith("422 input_rejected") and "720x1600" in off
                no_args = await failure(mcp, "tap", session_id=sid)
                assert "422" in no_args and "x and y" in no_args
                async with stdio_session(phone_api.api.url, stranger.key, errlog) as theirs:
                    assert (await failure(theirs, "screenshot", session_id=sid)).startswith("404 session_not_found")
                    assert (await failure(theirs, "end_session", session_id=sid)).startswith("404 session_not_found")

                assert (await call(mcp, "end_session", session_id=sid))["state"] == "closed"
                ended = await failure(mcp, "ui_tree", session_id=sid)
                assert ended.startswith("409 no_live_device")

    run(scenario(), timeout=180)
    assert "MCP server on stdio" in (tmp_path / "mcp.stderr").read_text()  # logs went to stderr


def test_the_api_serves_the_same_tools_over_streamable_http_with_each_callers_key(phone_api: PhoneApi) -> None:  # noqa: F811
    owner: Caller = phone_api.api.caller()
    stranger: Caller = phone_api.api.caller()
    url = f"{phone_api.api.url}/mcp"

    async def scenario() -> None:
        async with http_session(url, owner.key) as mcp:
            assert {t.name for t in (await mcp.list_tools()).tools} >= REQUIRED
            sid = (await call(mcp, "start_session", ttl_s=120))["session_id"]
            tree = await call(mcp, "ui_tree", session_id=sid)
            assert tree["package"] == "com.android.launcher3"
            async with http_session(url, stranger.key) as theirs:
                assert (await failure(theirs, "ui_tree", session_id=sid)).startswith("404 session_not_found")
            assert (await call(mcp, "end_session", session_id=sid))["state"] == "closed"

    run(scenario(), timeout=120)
    anonymous = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthenticated"


def test_stdout_carries_only_the_protocol(tmp_path: Path) -> None:
    """No API behind it: the protocol's own handshake and tool list need none, and the log line the
    command writes at start must not land on stdout."""
    params = server_params("http://127.0.0.1:9", "pf_unused")
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}  # fmt: skip
    lines = [hello, {"jsonrpc": "2.0", "method": "notifications/initialized"},
             {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}]  # fmt: skip
    proc = subprocess.Popen([params.command, *params.args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=params.env, cwd=params.cwd, bufsize=0)  # fmt: skip
    try:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in lines).encode())
        answers = []  # every line on stdout must be JSON-RPC; stdin stays open until both answers came
        deadline = time.monotonic() + 60
        while len(answers) < 2:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"{len(answers)} answers within 60 s"
            line = proc.stdout.readline()  # unbuffered: select sees every byte not yet read
            assert line, "stdout closed early"
            answers.append(json.loads(line))
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        stderr = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [a.get("id") for a in answers] == [1, 2] and all(a["jsonrpc"] == "2.0" for a in answers)
    assert {t["name"] for t in answers[1]["result"]["tools"]} >= REQUIRED
    assert "MCP server on stdio" in stderr


def test_without_a_key_the_command_says_how_to_give_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env |= {"PYTHONPATH": str(ROOT), "PHONEFLEET_DATA_DIR": str(tmp_path)}  # no up, no key file
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "mcp"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert "PHONEFLEET_API_KEY" in done.stderr


def test_a_task_that_asks_is_answered_and_personal_phones_are_listed(phone_api: PhoneApi, tmp_path: Path) -> None:  # noqa: F811
    """A task awaiting a confirmation (asked by the worker's own writers, as a run asks) is approved
    through ``answer_task``; the agent's side gets the approval. Personal phones are the caller's own."""
    api = phone_api.api
    owner = api.caller()
    url = f"{api.url}/mcp"
    made = owner.http.post("/api/v1/personal-phones", json={"name": "mine"})
    assert made.status_code == 201, made.text
    colleague = api.caller(tenant_id=owner.tenant_id)

    async def scenario() -> None:
        async with open_sessions(api.db_url) as sessions:
            async with sessions() as session, session.begin():
                tenant = await session.get_one(Tenant, owner.tenant_id)
                task = await make_task(session, tenant, status=TaskStatus.RUNNING, worker_id="host:1/w")
            tid = str(task.id)
            rows = TaskRows(Database(sessions), task.id, "host:1/w")
            rows.tenant_id, rows.status = owner.tenant_id, TaskStatus.RUNNING
            hooks = TaskHooks(rows, AgentSteering(), data_dir=tmp_path, deadline=time.monotonic() + 120,
                              poll_s=0.05, wait_for_user_s=60)  # fmt: skip
            await hooks.on_state(AgentState.AWAITING_CONFIRMATION, "asked")
            asked = asyncio.ensure_future(
                hooks.request_confirmation(a.Tap(element=(500, 500), message="Pay 10 EUR"), "Pay 10 EUR")
            )
            async with http_session(url, owner.key) as mcp:
                deadline = time.monotonic() + 20
                while (await asyncio.to_thread(owner.http.get, f"/api/v1/tasks/{tid}")).json()["status"] != (
                    "awaiting_confirmation"
                ):
                    assert time.monotonic() < deadline and not asked.done(), "the task never asked"
                    await asyncio.sleep(0.05)
                wrong = await failure(mcp, "answer_task", task_id=tid, wait_s=0)
                assert "exactly one of approve" in wrong
                answered = await call(mcp, "answer_task", task_id=tid, approve=True, wait_s=0)
                assert answered["task_id"] == tid
                assert await asyncio.wait_for(asked, 20) is True  # the agent's side got the approval
                again = await failure(mcp, "answer_task", task_id=tid, approve=False, wait_s=0)
                assert again.startswith("409"), again

                [phone] = await call(mcp, "list_personal_phones")
                assert phone["id"] == made.json()["id"] and phone["name"] == "mine"
            async with http_session(url, colleague.key) as theirs:
                assert await call(theirs, "list_personal_phones") == []  # another user's phone is not theirs

    run(scenario(), timeout=120)
