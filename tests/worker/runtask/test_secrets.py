"""The vault and redaction end to end: a real task logs in to the virtual phone's Bank by typing a
secret (``Type_Secret``), run by a real worker with the reference model, and the secret's value is
then looked for everywhere it must never be: the requests sent to the model and its replies, the
task's rows (task, steps, events, deliveries), the webhook bodies received, the worker's, the API's
and the model's logs (the worker and the API at DEBUG, where the driver logs every shell command),
the task, steps and events APIs, the trajectory zip and the tenant export. The Bank's password is set to the secret's value first, so the login only works
if it was typed; its login is made a plain window (no FLAG_SECURE), so its password field shows in
the screenshots, and must be black in every image sent to the model and every one stored."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image
from sqlalchemy import text
from websockets.sync.client import connect

from device_pool.logs import LogFormatter
from orchestrator.services.webhook_subscriptions import SUBSCRIBABLE_EVENTS
from tests.aio import run
from tests.asgi import serve_asgi
from tests.databases import open_sessions
from tests.processes import ReferenceModel
from tests.worker.runtask.conftest import Api, Pool, StartWorker
from tests.worker.runtask.test_subscriptions import Inbox, admin_client, only_tenant, webhooks_served

SECRET = "pf-Vault-8d3f61-Bank"  # in no other string the run makes
BANK_DATA = "/data/data/com.phonefleet.bank/files/state.json"


@dataclass
class ModelRecorder:
    """An OpenAI-compatible endpoint that forwards to the reference model and keeps every request
    and reply body (the fake part: a recording proxy, since the reference model keeps none)."""

    upstream: str
    exchanges: list[tuple[bytes, bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        path = scope["path"].removeprefix("/v1")
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() in (b"content-type", b"authorization")}
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(scope["method"], f"{self.upstream}{path}", content=body, headers=headers)
        with self._lock:
            self.exchanges.append((body, answer.content))
        kept = [(b"content-type", answer.headers.get("content-type", "application/json").encode())]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
        await send({"type": "http.response.body", "body": answer.content})


async def _rows(pg_url: str, task_id: str) -> str:
    """Every column of the task's rows (task, steps, events), as text."""
    async with open_sessions(pg_url) as sessions, sessions() as session:
        found = []
        for query in (
            "SELECT t::text FROM tasks t WHERE id = :id",
            "SELECT s::text FROM steps s WHERE task_id = :id",
            "SELECT e::text FROM events e WHERE task_id = :id",
            "SELECT d::text FROM webhook_deliveries d WHERE task_id = :id",
        ):
            found += list(await session.scalars(text(query), {"id": task_id}))
        return "\n".join(found)


@contextmanager
def _api_log() -> Iterator[io.StringIO]:
    """The project's log records of this process (the API, served in a thread) at DEBUG, in the
    deployment's json format: each with its extra fields, as a log collector gets them. Only the
    project's loggers go to DEBUG: libraries' debug output (SQLAlchemy's rows, websockets' frames)
    would slow the run to a crawl and is no record the project writes."""
    out, root = io.StringIO(), logging.getLogger()
    handler = logging.StreamHandler(out)
    handler.setFormatter(LogFormatter("json"))
    root.addHandler(handler)
    ours = [logging.getLogger(name) for name in ("orchestrator", "device_pool", "worker")]
    levels = [logger.level for logger in ours]
    for logger in ours:
        logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        for logger, level in zip(ours, levels, strict=True):
            logger.setLevel(level)


def _unzipped(archive: bytes) -> bytes:
    """Every member of a zip, uncompressed, one after another."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return b"\n".join(opened.read(name) for name in opened.namelist())


def _replayed_events(api: Api, task_id: str) -> bytes:
    """The task's events as the event stream replays them to its tenant, up to its last status."""
    url = f"{api.url.replace('http://', 'ws://')}/api/v1/events?task_id={task_id}&after=0"
    seen: list[str] = []
    with connect(url, additional_headers={"Authorization": api.http.headers["Authorization"]}, open_timeout=10) as ws:
        while not any('"succeeded"' in m and "task.status" in m for m in seen):
            seen.append(str(ws.recv(timeout=10)))
    return "\n".join(seen).encode()


def _masked(image: Image.Image, bounds: list[int], scale: tuple[float, float]) -> bool:
    """Whether the region (in the stored screenshot's pixels, scaled to ``image``) is black, a
    pixel's margin aside (JPEG blurs the edges)."""
    left, top, right, bottom = bounds
    box = (int(left * scale[0]) + 2, int(top * scale[1]) + 2, int(right * scale[0]) - 2, int(bottom * scale[1]) - 2)
    return image.convert("L").crop(box).getextrema()[1] < 40


def _sent_image(request: bytes) -> Image.Image:
    messages = json.loads(request)["messages"]
    urls = [p["image_url"]["url"] for m in messages if isinstance(m["content"], list) for p in m["content"]
            if p["type"] == "image_url"]  # fmt: skip
    return Image.open(io.BytesIO(base64.b64decode(urls[-1].split(",", 1)[1])))


def test_a_secret_typed_into_the_bank_login_is_seen_nowhere(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel, pg_url: str
) -> None:
    recorder, inbox = ModelRecorder(reference_model.base_url), Inbox()
    # The Bank's password, set before the API's log is read: the driver logs this command (the
    # test's own, in the API's process) with the value in it.
    pool.shell(f"mkdir -p {BANK_DATA.rsplit('/', 1)[0]} && echo '{json.dumps({'password': SECRET, 'secure': False})}' > {BANK_DATA}")
    with (
        serve_asgi(recorder, lifespan="off") as model_url,
        serve_asgi(inbox, lifespan="off") as hooks_url,
        webhooks_served(api.settings),
        _api_log() as api_log,
    ):
        admin = admin_client(api, pg_url, tenant_id=only_tenant(pg_url))
        stored = admin.post("/api/v1/secrets", json={"name": "bank_password", "value": SECRET})
        assert stored.status_code == 201, stored.text
        subscribed = admin.post("/api/v1/webhooks", json={"url": f"{hooks_url}/all", "events": list(SUBSCRIBABLE_EVENTS)})
        assert subscribed.status_code == 201, subscribed.text

        worker = start_worker(f"{model_url}/v1", PHONEFLEET_LOG_LEVEL="DEBUG")
        task = api.submit("Open Bank and log in as demo", timeout_s=120, webhook_url=f"{hooks_url}/task")
        done = api.wait_status(task["id"], ("succeeded", "failed", "waiting_for_user"), timeout=100)
        steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
        assert done["status"] == "succeeded", (done, [(s["action_text"], s["result"]) for s in steps])

        typed = [s for s in steps if (s["action"] or {}).get("name") == "Type_Secret"]
        assert [s["action"] for s in typed] == [{"name": "Type_Secret", "secret": "bank_password"}], steps
        assert typed[0]["action_text"] == 'do(action="Type_Secret", name="bank_password")'
        # The model was told the name (never the value) and asked for it by name.
        first = json.loads(recorder.exchanges[0][0])
        assert "bank_password" in json.dumps(first["messages"][1]), first["messages"][1]

        def delivered() -> bool:
            bodies = [json.loads(b) for _h, b in inbox.at("/task") + inbox.at("/all")]
            return any(e["payload"].get("to") == "succeeded" for e in bodies) and len(inbox.at("/all")) >= len(steps)

        from tests.conditions import wait_until

        wait_until(delivered, timeout=30, what="the task's webhooks delivered")

        # Redaction: the password field, black in what the model got and in what was stored.
        masked = [(i, s) for i, s in enumerate(steps) if any(r["kind"] == "password" for r in s["redactions"])]
        assert len(masked) >= 3, [(s["action_text"], s["redactions"]) for s in steps]  # the login's steps
        for i, step in masked:
            (region,) = [r for r in step["redactions"] if r["kind"] == "password"]
            assert set(region) == {"bounds", "kind"}, region  # where and what kind, never the content
            stored = Image.open(io.BytesIO(api.http.get(step["screenshot_url"]).content))
            sent = _sent_image(recorder.exchanges[i][0])
            assert _masked(stored, region["bounds"], (1.0, 1.0)), (i, region)
            scale = (sent.width / stored.width, sent.height / stored.height)
            assert _masked(sent, region["bounds"], scale), (i, region)
            assert stored.convert("L").getextrema()[1] > 200  # the rest of the screen is there
        trajectory = api.http.get(f"/api/v1/tasks/{task['id']}/trajectory")
        assert trajectory.status_code == 200
        export = admin.get("/api/v1/tenant/export")
        assert export.status_code == 200, export.text
        events = _replayed_events(api, task["id"])

    exported = _unzipped(export.content)
    assert task["id"].encode() in exported and b"Type_Secret" in exported  # the run is in it
    places: dict[str, bytes] = {
        "model requests": b"\n".join(request for request, _reply in recorder.exchanges),
        "model replies": b"\n".join(reply for _request, reply in recorder.exchanges),
        "task, step, event and delivery rows": run(_rows(pg_url, task["id"])).encode(),
        "webhook bodies": b"\n".join(body for _p, _h, body in inbox.posts),
        "worker log": worker.log_path.read_bytes(),
        "API log": api_log.getvalue().encode(),
        "model log": reference_model.log_path.read_bytes(),
        "steps API": api.http.get(f"/api/v1/tasks/{task['id']}/steps").content,
        "task API": api.http.get(f"/api/v1/tasks/{task['id']}").content,
        "event stream": events,
        "trajectory zip": _unzipped(trajectory.content),
        "tenant export": exported,
    }
    assert all(places.values()), [name for name, found in places.items() if not found]
    leaked = [name for name, found in places.items() if SECRET.encode() in found]
    assert leaked == [], f"the secret's value is in: {leaked}"
    # The driver did log its shell commands at DEBUG, the secret's as "[secret input]".
    assert b"[secret input]" in places["worker log"]
    assert b'"logger": "orchestrator.' in places["API log"]  # the API's own records were read
