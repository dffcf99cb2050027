"""``PHONEFLEET_LOG_FORMAT=json``: the commands print one JSON object per line, and the API's lines
carry the request id it answers with (``X-Request-ID``). Real processes, stopped by their pid."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from orchestrator.cli.port_file import read_port_file
from tests.conditions import GiveUp, wait_until
from tests.processes import REPO, stop_process

Record = dict[str, Any]


@dataclass
class Command:
    """A ``phonefleet`` process whose stdout and stderr go to one file."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path

    def lines(self) -> list[str]:
        """The complete non-empty lines written so far (a line still being written is left out)."""
        text = self.out.read_text(errors="replace")
        return [line for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]

    def records(self) -> list[Record]:
        """Every line as a JSON object with a level and a message; any other line fails the test."""
        records = []
        for line in self.lines():
            try:
                record = json.loads(line)
            except ValueError:
                pytest.fail(f"{self.name}: not a JSON line: {line!r}\n{self.out.read_text()}")
            assert isinstance(record, dict) and {"ts", "level", "logger", "message"} <= set(record), line
            records.append(record)
        return records

    def wait_for(self, match: Callable[[Record], bool], what: str, timeout: float = 60.0) -> Record:
        def seen() -> Record | None:
            found = next((r for r in self.records() if match(r)), None)
            if found is None and self.proc.poll() is not None:
                raise GiveUp(f"{self.name} exited with {self.proc.returncode}:\n{self.out.read_text()}")
            return found

        return wait_until(seen, timeout=timeout, interval=0.1, what=f"{self.name}: {what}")

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


@pytest.fixture
def json_env(tmp_path: Path) -> dict[str, str]:
    """The environment of every command here: json logs, a data directory (SQLite) of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    env.update(PHONEFLEET_LOG_FORMAT="json", PHONEFLEET_DATA_DIR=str(tmp_path / "data"))
    return env


@pytest.fixture
def start(tmp_path: Path, json_env: dict[str, str]) -> Iterator[Callable[..., Command]]:
    commands: list[Command] = []

    def run(name: str, *argv: str, **env: str) -> Command:
        out = tmp_path / f"{name}.out"
        with open(out, "wb") as fh:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator.cli", *argv], cwd=REPO, env={**json_env, **env},
                stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        commands.append(Command(name, proc, out))
        return commands[-1]

    try:
        yield run
    finally:
        for command in commands:
            command.stop()


def _migrated(start: Callable[..., Command]) -> list[Record]:
    """``phonefleet migrate`` on the test's SQLite database: its records (it exits by itself)."""
    migrate = start("migrate", "migrate")
    assert migrate.proc.wait(timeout=120) == 0, migrate.out.read_text()
    return migrate.records()


def test_migrate_prints_json_and_says_what_it_migrated_once(start: Callable[..., Command]) -> None:
    first = _migrated(start)
    assert [(r["level"], r["message"]) for r in first] == [("INFO", "database migrated")], first
    assert first[0]["from_revision"] == "base" and first[0]["to_revision"]
    again = start("migrate-again", "migrate")
    assert again.proc.wait(timeout=120) == 0
    assert again.lines() == []  # nothing migrated: nothing said (alembic's own lines are off at INFO)


def test_sim_prints_json(start: Callable[..., Command], tmp_path: Path) -> None:
    ports_file = tmp_path / "ports.json"
    sim = start(
        "sim", "sim", "--count", "1", "--base-port", "0", "--ports-file", str(ports_file),
        "--data-root", str(tmp_path / "phones"),
    )  # fmt: skip
    listening = sim.wait_for(lambda r: r["message"].startswith("phone 0 listening"), "phone 0 listening")
    assert listening["serial"] == f"127.0.0.1:{json.loads(ports_file.read_text())[0]}"
    sim.stop()
    assert sim.proc.returncode == 0
    assert sim.records()


def _screenshot_uri() -> str:
    image = Image.new("RGB", (360, 800), "white")
    ImageDraw.Draw(image).text((20, 40), "Settings", fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_reference_model_prints_json_through_an_ocr_request(start: Callable[..., Command], tmp_path: Path) -> None:
    port_file = tmp_path / "model.port"
    model = start("reference-model", "reference-model", "--port", "0", "--port-file", str(port_file))
    model.wait_for(lambda r: r["message"].startswith("Uvicorn running"), "serving")
    port = read_port_file(port_file)
    content = [
        {"type": "text", "text": "open Settings"},
        {"type": "image_url", "image_url": {"url": _screenshot_uri()}},
    ]
    reply = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json={"model": "autoglm-phone-9b", "messages": [{"role": "user", "content": content}]},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    # The OCR engine loads on the first request: its libraries print nothing of their own.
    model.wait_for(lambda r: r["message"].startswith("decision:"), "the request's decision")
    model.stop()
    assert any(r["message"].startswith("OCR engine loaded") for r in model.records())


def test_api_prints_json_and_answers_and_logs_each_request_id(start: Callable[..., Command], tmp_path: Path) -> None:
    _migrated(start)
    admin = start("admin", "admin", "create-key", "--tenant", "logs", "--admin")
    assert admin.proc.wait(timeout=60) == 0, admin.out.read_text()
    key = next(line for line in admin.lines() if line.startswith("pf_"))
    port_file = tmp_path / "api.port"
    api = start("api", "api", "--port", "0", "--port-file", str(port_file))
    api.wait_for(lambda r: r["message"] == "Application startup complete.", "started")
    port = read_port_file(port_file)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    given = http.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c:1"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "lb-7f3a9c:1"
    made = http.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    malformed = http.get("/healthz", headers={"X-Request-ID": 'two words; "quoted"'}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", malformed) and malformed != made
    # The submission fast path answers in front of FastAPI: behind the request id all the same.
    submitted = http.post(
        "/api/v1/tasks",
        json={"instruction": "open Settings"},
        headers={"Authorization": f"Bearer {key}", "X-Request-ID": "submit-1"},
    )
    assert submitted.status_code == 202 and submitted.headers["x-request-id"] == "submit-1", submitted.text
    refused = http.post(
        "/api/v1/tasks", json={"instruction": "x"}, headers={"Authorization": "Bearer pf_x_y"}
    )
    assert refused.status_code == 401 and re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])

    for rid, request in [
        ("lb-7f3a9c:1", "GET /healthz"),
        (made, "GET /healthz"),
        ("submit-1", "POST /api/v1/tasks"),
        (refused.headers["x-request-id"], "POST /api/v1/tasks"),
    ]:
        line = api.wait_for(lambda r, rid=rid: r.get("request_id") == rid, f"the access line of {rid}")
        assert line["logger"] == "uvicorn.access" and request in line["message"], line
    api.stop()
    records = api.records()
    assert key not in api.out.read_text()
    assert any(r["message"].startswith("Finished server process") for r in records)


def test_the_request_id_middleware_is_in_front_of_the_error_middleware_and_websockets() -> None:
    """A 500 (answered by Starlette's outermost error middleware) and a WebSocket accept carry the id."""
    import websockets.sync.client
    from starlette.applications import Starlette
    from starlette.routing import Route, WebSocketRoute

    from device_pool.logs import current
    from orchestrator.api.request_id import install_request_id
    from tests.asgi import serve_asgi

    def boom(request: Any) -> None:
        raise RuntimeError("a bug")

    async def echo_context(ws: Any) -> None:
        await ws.accept()
        await ws.send_json(current())
        await ws.close()

    app = Starlette(routes=[Route("/boom", boom), WebSocketRoute("/ws", echo_context)])
    install_request_id(app)
    with serve_asgi(app, lifespan="off") as url:
        failed = httpx.get(f"{url}/boom", headers={"X-Request-ID": "r-500"})
        assert failed.status_code == 500 and failed.headers["x-request-id"] == "r-500"
        ws_url = url.replace("http://", "ws://") + "/ws"
        with websockets.sync.client.connect(ws_url, additional_headers={"X-Request-ID": "ws-1"}) as ws:
            assert json.loads(ws.recv()) == {"request_id": "ws-1"}
            assert ws.response.headers["x-request-id"] == "ws-1"


def test_worker_prints_json_from_start_to_warm_shutdown(start: Callable[..., Command]) -> None:
    """Celery's banner and shutdown notices are its own prints: in json mode they are log records too."""
    _migrated(start)
    worker = start("worker", "worker", "--concurrency", "1")
    worker.wait_for(lambda r: r["message"].endswith("ready."), "ready", timeout=120)
    worker.stop()  # SIGTERM: Celery's warm shutdown, which it announces
    assert worker.proc.returncode == 0, worker.out.read_text()
    records = worker.records()  # every line a JSON object, or the test fails here
    assert any(r["message"].startswith("consuming queues") for r in records)
    assert any("shutdown" in r["message"].lower() for r in records), [r["message"] for r in records]


def test_a_refusal_to_start_is_a_json_record_too(start: Callable[..., Command]) -> None:
    # Several workers build their settings from the environment, so --database-url is refused.
    refused = start("api-refused", "api", "--workers", "2", "--database-url", "sqlite+aiosqlite:///x.db")
    assert refused.proc.wait(timeout=60) == 2, refused.out.read_text()
    (record,) = refused.records()
    assert record["level"] == "ERROR" and "PHONEFLEET_DATABASE_URL" in record["message"], record
