"""``phonefleet task`` at a terminal: it finds the API as ``phonefleet up`` left it, and ``--wait``
follows the task as it happens (steps, waits, the agent's requests), answering at a terminal.

The worker's side is played by the test, through the database, as ``worker/run/hooks.py`` writes it
(status, events); the API is real and streams those events over its WebSocket.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import follow as follow_module
from orchestrator.cli.follow import Follower, describe_action, follow
from orchestrator.cli.up import KEY_FILE, URL_FILE
from orchestrator.client import PhoneFleetClient
from orchestrator.db import Event, Task, TaskStatus
from tests.aio import run
from tests.asgi import closed_port
from tests.conditions import wait_until
from tests.databases import open_sessions
from tests.orchestrator.api.test_interactions import add_event, events, set_status
from tests.orchestrator.api.test_steps import add_steps
from tests.orchestrator.conftest import Api
from tests.processes import REPO

WAITING = {"kind": "confirmation", "message": "Pay 1.00 EUR to the shop", "since": "2026-01-01T00:00:00Z"}
TAP = {"name": "Tap", "element": [499, 393], "message": "Pay 1.00 EUR to the shop"}


def _env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")} | extra


class Cli:
    """``phonefleet task …`` running; its stderr collected line by line as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], *, stdin: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "task", *args], cwd=REPO, env=env,
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        buffer = ""
        while chunk := self.proc.stderr.read(1):  # prompts end without a newline
            buffer += chunk
            if chunk == "\n" or buffer.endswith(("[y/N] ", "answer elsewhere): ")):  # a prompt, waiting
                self.err.append(buffer)
                buffer = ""
        if buffer:
            self.err.append(buffer)

    def saw(self, text: str, what: str) -> str:
        line = wait_until(lambda: next((x for x in self.err if text in x), None), timeout=30, what=what)
        return line

    def finish(self) -> tuple[int, str]:
        # stdout only: stderr is the reader thread's (communicate() would read it too, taking lines from it).
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return self.proc.returncode, out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _task_id(cli: Cli) -> str:
    first = cli.saw("  queued  ", "the submitted task's line")
    return first.split()[0]


def _status(
    api: Api, task_id: str, frm: str, to: str, waiting: dict | None = None, reason: str | None = None
) -> None:
    """The worker's status change: the row (status, waiting, reason) and its ``task.status`` event."""

    async def update() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            task = await session.get_one(Task, uuid.UUID(task_id))
            task.status, task.waiting, task.reason = TaskStatus(to), waiting, reason
            payload = {"from": frm, "to": to, "waiting": waiting, **({"reason": reason} if reason else {})}
            session.add(Event(tenant_id=task.tenant_id, task_id=task.id, type="task.status", payload=payload))

    run(update())


def test_submit_wait_streams_steps_and_waits_as_they_happen(api: Api) -> None:
    caller = api.caller()
    cli = Cli(["submit", "Pay the shop", "--wait", "--wait-timeout", "120"],
              _env(PHONEFLEET_URL=api.url, PHONEFLEET_API_KEY=caller.key))  # fmt: skip
    try:
        task_id = _task_id(cli)
        cli.saw("status: queued", "the task.created event")
        _status(api, task_id, "queued", "running")
        add_event(api, task_id, "task.step", {"index": 0, "action_text": 'do(action="Launch", app="Shop")',
                                              "result": "ok", "current_app": "Launcher"})  # fmt: skip
        # Printed while the task still runs: streamed, not printed at the end.
        cli.saw('step 0: [Launcher] do(action="Launch", app="Shop")', "the step line")
        assert cli.proc.poll() is None
        _status(api, task_id, "running", "awaiting_confirmation", WAITING)
        add_event(api, task_id, "task.confirmation_requested", {"message": WAITING["message"], "action": TAP})
        line = cli.saw("waiting (confirmation): Pay 1.00 EUR to the shop", "the waiting reason")
        assert "Tap at (499, 393) on the screen" in line
        cli.saw("answer in the dashboard", "no prompt: stdin is not a terminal")
        assert not [t for t, _ in events(api, task_id) if t == "task.confirmation"]
        _status(api, task_id, "awaiting_confirmation", "failed", reason="denied")
        code, out = cli.finish()
    finally:
        cli.stop()
    assert code == 1, (out, cli.err)
    assert out.startswith(f"{task_id}  failed  reason=denied"), out
    assert "status: awaiting_confirmation → failed (denied)" in "".join(cli.err)
    # The waiting reason is said once, though the status event and the request both carry it.
    assert sum("Pay 1.00 EUR" in line for line in cli.err) == 1, cli.err


def test_confirmations_and_questions_are_answered_at_a_terminal(api: Api) -> None:
    caller = api.caller()
    master, slave = pty.openpty()
    cli = Cli(["submit", "Pay the shop", "--wait", "--wait-timeout", "120"],
              _env(PHONEFLEET_URL=api.url, PHONEFLEET_API_KEY=caller.key), stdin=slave)  # fmt: skip
    os.close(slave)
    try:
        task_id = _task_id(cli)
        _status(api, task_id, "queued", "running")
        _status(api, task_id, "running", "awaiting_confirmation", WAITING)
        # The worker names the element the tap hits (worker/agent/executor.py, label_at).
        add_event(api, task_id, "task.confirmation_requested",
                  {"message": WAITING["message"], "action": TAP, "element_label": "Pay $1.00"})  # fmt: skip
        line = cli.saw("waiting (confirmation): Pay 1.00 EUR to the shop", "the waiting reason")
        assert line.rstrip().endswith("— Tap “Pay $1.00”"), line
        cli.saw("Approve? [y/N]", "the confirmation prompt")
        os.write(master, b"y\n")
        wait_until(lambda: ("task.confirmation", {"approved": True}) in events(api, task_id), timeout=30,
                   what="the approval reached the API")  # fmt: skip

        question = {"kind": "question", "message": "Which colour?", "since": "2026-01-01T00:00:01Z"}
        _status(api, task_id, "awaiting_confirmation", "waiting_for_user", question)
        add_event(api, task_id, "task.question", {"question": "Which colour?"})
        cli.saw("Your answer", "the question prompt")
        os.write(master, b"blue\n")
        wait_until(lambda: ("task.reply", {"answer": "blue"}) in events(api, task_id), timeout=30,
                   what="the answer reached the API")  # fmt: skip
        _status(api, task_id, "waiting_for_user", "succeeded")
        code, out = cli.finish()
    finally:
        cli.stop()
        os.close(master)
    assert code == 0, (out, cli.err)
    assert out.startswith(f"{task_id}  succeeded"), out


def test_polling_when_the_events_socket_cannot_be_used(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = api.caller()
    # A proxy that drops WebSockets, an older server: the socket is refused; the task is polled.
    monkeypatch.setattr(follow_module, "_over_socket", lambda *args: False)
    out = io.StringIO()
    with PhoneFleetClient(api.url, caller.key) as client:
        task_id = client.submit("Open Settings")["id"]
        result: dict[str, Any] = {}

        def follow_it() -> None:
            result.update(follow(client, api.url, caller.key, task_id, timeout_s=60, poll_s=0.1, out=out))

        thread = threading.Thread(target=follow_it, daemon=True)
        thread.start()
        set_status(api, task_id, "running")
        add_steps(api.db_url, uuid.UUID(task_id), 2, {})
        wait_until(lambda: "step 1: [Settings]" in out.getvalue(), timeout=30, what="the polled steps")
        set_status(api, task_id, "succeeded")
        thread.join(timeout=30)
    assert result["status"] == "succeeded"
    text = out.getvalue()
    assert "status: running" in text and "step 0: [Settings]" in text and "status: succeeded" in text, text


def test_the_cli_finds_the_api_as_phonefleet_up_left_it(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    task_id = caller.http.post("/api/v1/tasks", json={"instruction": "x"}).json()["id"]
    data = tmp_path / "up-data"
    data.mkdir()
    (data / KEY_FILE).write_text(caller.key + "\n")

    def status(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "task", "status", task_id],
                              cwd=REPO, env=_env(PHONEFLEET_DATA_DIR=str(data), **env),
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    # The URL up wrote while it runs (its port the OS's choice), and the admin key it keeps.
    (data / URL_FILE).write_text(api.url + "\n")
    r = status(PHONEFLEET_API__PORT="0")
    assert r.returncode == 0 and r.stdout.startswith(f"{task_id}  queued"), r.stderr
    # No file: the settings' api.host and api.port, as up binds them.
    (data / URL_FILE).unlink()
    port = api.url.rsplit(":", 1)[1]
    r = status(PHONEFLEET_API__HOST="0.0.0.0", PHONEFLEET_API__PORT=port)
    assert r.returncode == 0 and r.stdout.startswith(f"{task_id}  queued"), r.stderr
    # PHONEFLEET_URL wins over both.
    (data / URL_FILE).write_text(api.url + "\n")
    r = status(PHONEFLEET_URL=f"http://127.0.0.1:{closed_port()}")
    assert r.returncode == 1 and "cannot reach" in r.stderr and "(from PHONEFLEET_URL)" in r.stderr
    # A file left by an up that is gone: the error says where the URL came from.
    (data / URL_FILE).write_text(f"http://127.0.0.1:{closed_port()}\n")
    r = status()
    assert (
        r.returncode == 1 and f"{data / URL_FILE}, written by phonefleet up: is it still running?" in r.stderr
    )


def test_actions_are_described_for_people() -> None:
    assert describe_action(TAP) == "Tap at (499, 393) on the screen"
    assert describe_action(TAP, "Pay now") == "Tap “Pay now”"
    assert describe_action({"name": "Type", "text": "hello"}) == "Type “hello”"
    assert describe_action({"name": "Launch", "app": "Settings"}) == "Open Settings"
    assert describe_action({"name": "Long_Press", "element": [1, 2]}) == "Long Press at (1, 2) on the screen"


def test_a_replayed_request_that_was_answered_is_not_asked_again() -> None:
    """``phonefleet task wait`` replays a task's events from the first: a request answered meanwhile
    is shown, but only the one still open is asked at the terminal, once the replay is over."""
    asked: list[str] = []
    out = io.StringIO()
    follower = Follower(None, "t1", base_url="http://x", interactive=True, out=out,  # type: ignore[arg-type]
                        ask=lambda text: asked.append(text) or "")  # fmt: skip
    follower.event(
        {"id": 1, "type": "task.confirmation_requested", "payload": {"message": "Pay", "action": TAP}}
    )
    follower.event({"id": 2, "type": "task.confirmation", "payload": {"approved": True}})
    follower.idle()
    assert asked == [] and "answered: approved" in out.getvalue()
    follower.event({"id": 3, "type": "task.question", "payload": {"question": "Which colour?"}})
    assert asked == []  # not before the stream is idle: its answer may be right behind it
    follower.idle()
    follower.idle()
    assert asked == ["Your answer (empty: answer elsewhere): "]  # once
