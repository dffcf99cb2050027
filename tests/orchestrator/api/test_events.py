"""``WS /api/v1/events`` against the API served for real (uvicorn), with the ``websockets`` client."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from orchestrator.api import create_app
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.asgi import serve_asgi
from tests.conftest import REDIS_URL
from tests.orchestrator.api.conftest import Api, Caller

TIMEOUT_S = 15.0


@contextmanager
def events(api: Api, key: str | None = None, **query: Any) -> Iterator[ClientConnection]:
    """A socket on the API's events stream; ``key`` goes in the Authorization header."""
    url = api.url.replace("http://", "ws://", 1) + "/api/v1/events"
    if query:
        url += "?" + urlencode(query)
    headers = {"Authorization": f"Bearer {key}"} if key else None
    with connect(url, additional_headers=headers, open_timeout=TIMEOUT_S, close_timeout=2) as ws:
        yield ws


def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a keepalive."""
    while True:
        message = json.loads(ws.recv(timeout=TIMEOUT_S))
        if message["type"] != "keepalive":
            return message


def subscribed(ws: ClientConnection) -> dict[str, Any]:
    message = receive(ws)
    assert message["type"] == "subscribed" and message["id"] is None, message
    return message


def receive_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [receive(ws) for _ in range(count)]


def close_of(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=TIMEOUT_S)
    assert info.value.rcvd is not None, "the server closed without a close frame"
    return info.value.rcvd.code, info.value.rcvd.reason


def submit(caller: Caller, **fields: Any) -> str:
    answer = caller.http.post("/api/v1/tasks", json={"instruction": "open Settings", **fields})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def cancel(caller: Caller, task_id: str) -> None:
    answer = caller.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert answer.status_code == 200, answer.text


def test_events_of_a_created_and_cancelled_task_arrive_in_order(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    with events(any_db_api, caller.key) as ws:
        subscribed(ws)
        task_id = submit(caller)
        cancel(caller, task_id)
        created, ended = receive_events(ws, 2)
    assert (created["type"], created["task_id"], created["payload"]["status"]) == ("task.created", task_id, "queued")
    assert created["payload"]["waiting"]["kind"] == "queued"
    assert ended["type"] == "task.status" and ended["task_id"] == task_id
    # The end of the wait rides on the status event: a cancelled task waits for nothing.
    assert ended["payload"] == {"from": "queued", "to": "cancelled", "reason": "cancelled", "waiting": None}
    assert created["id"] < ended["id"]
    assert set(created) == {"id", "type", "task_id", "created_at", "payload"}
    assert created["created_at"].endswith("Z")


def test_resume_after_an_id_replays_what_followed_then_goes_live(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    with events(any_db_api, caller.key) as ws:
        subscribed(ws)
        first = submit(caller)
        (seen,) = receive_events(ws, 1)
    # Disconnected: these happen while nobody listens.
    cancel(caller, first)
    second = submit(caller)
    with events(any_db_api, caller.key, after=seen["id"]) as ws:
        assert subscribed(ws)["payload"] == {"after": seen["id"]}
        replayed = receive_events(ws, 2)
        cancel(caller, second)
        (live,) = receive_events(ws, 1)
    assert [(e["type"], e["task_id"]) for e in replayed] == [("task.status", first), ("task.created", second)]
    assert live["type"] == "task.status" and live["task_id"] == second
    ids = [seen["id"], *(e["id"] for e in replayed), live["id"]]
    assert ids == sorted(set(ids)), "ids ascend, none twice"


def test_task_filter_streams_only_that_task(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    wanted, other = submit(caller), submit(caller)
    with events(any_db_api, caller.key, task_id=wanted, after=0) as ws:
        subscribed(ws)
        (created,) = receive_events(ws, 1)  # replayed from after=0
        cancel(caller, other)
        cancel(caller, wanted)
        (ended,) = receive_events(ws, 1)
    assert (created["type"], created["task_id"]) == ("task.created", wanted)
    assert (ended["type"], ended["task_id"]) == ("task.status", wanted)


def test_another_tenant_sees_none_of_the_events(any_db_api: Api) -> None:
    alice, bob = any_db_api.caller(), any_db_api.caller()
    with events(any_db_api, bob.key, after=0) as ws:
        subscribed(ws)
        cancel(alice, submit(alice))
        own = submit(bob)
        # Delivery is in id order: had Alice's earlier events leaked, they would come first.
        (first,) = receive_events(ws, 1)
    assert (first["type"], first["task_id"]) == ("task.created", own)


def test_first_message_authentication_for_browsers(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    with events(any_db_api) as ws:
        ws.send(json.dumps({"type": "auth", "api_key": caller.key}))
        subscribed(ws)
        task_id = submit(caller)
        (created,) = receive_events(ws, 1)
    assert created["task_id"] == task_id


@pytest.mark.parametrize(
    "how",
    ["wrong key header", "revoked key header", "wrong key message", "not an auth message", "binary message"],
)
def test_bad_credentials_close_with_4401(any_db_api: Api, how: str) -> None:
    good = any_db_api.caller()
    wrong = good.key[:-4] + ("aaaa" if not good.key.endswith("aaaa") else "bbbb")
    revoked = any_db_api.caller(revoked=True)
    header = {"wrong key header": wrong, "revoked key header": revoked.key}.get(how)
    with events(any_db_api, header) as ws:
        if how == "wrong key message":
            ws.send(json.dumps({"type": "auth", "api_key": wrong}))
        elif how == "not an auth message":
            ws.send(json.dumps({"type": "subscribe", "key": good.key}))
        elif how == "binary message":
            ws.send(b"\x00\x01")
        code, reason = close_of(ws)
    assert code == 4401
    assert reason  # says why, e.g. "invalid API key"


@pytest.mark.parametrize(
    ("query", "code", "words"),
    [
        ({"task_id": "not-a-uuid"}, 4422, "task_id"),
        ({"after": "-1"}, 4422, "after"),
        ({"api_key": "pf_00000000_x"}, 4422, "api_key"),  # keys in URLs leak into logs: refused
        ({"task_id": str(uuid.uuid4())}, 4404, "no task"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(
    any_db_api: Api, query: dict[str, str], code: int, words: str
) -> None:
    caller = any_db_api.caller()
    with events(any_db_api, caller.key, **query) as ws:
        got, reason = close_of(ws)
    assert got == code and words in reason, (got, reason)


def test_another_tenants_task_is_not_found(any_db_api: Api) -> None:
    alice, bob = any_db_api.caller(), any_db_api.caller()
    task_id = submit(alice)
    with events(any_db_api, bob.key, task_id=task_id) as ws:
        code, reason = close_of(ws)
    assert (code, reason) == (4404, f"no task {task_id}")



def test_stopping_the_api_closes_open_sockets_cleanly(
    tmp_path: Path, migrated_sqlite_url: str, redis_prefix: str
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_sqlite_url, redis_url=REDIS_URL)
    with ExitStack() as stack:
        queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
        stack.callback(queue.close)
        server = stack.enter_context(ExitStack())
        url = server.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
        api = Api(url=url, settings=settings, redis_prefix=redis_prefix, _stack=stack)
        with events(api, api.caller().key) as ws:
            subscribed(ws)
            server.close()  # uvicorn's shutdown, with this socket open
            code, _ = close_of(ws)
    assert code in (1001, 1012), code  # going away / service restart: reconnect with after=
