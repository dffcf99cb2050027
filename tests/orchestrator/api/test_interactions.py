"""People answering a running agent over real HTTP: confirm, takeover, handback, reply.

The worker's side is played by the test: it sets the task's status and writes the request events
(``task.confirmation_requested``, ``task.takeover_requested``, ``task.question``) straight into
the database, as ``worker/run/hooks.py`` does; the API must answer with the reply events that
worker polls for.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from unittest.mock import ANY

import pytest
from sqlalchemy import select

from orchestrator.db import Event, Task, TaskStatus, Tenant
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api, Caller
from tests.orchestrator.factories import make_task

ALL_STATUSES = [s.value for s in TaskStatus]


def add_task(
    api: Api, caller: Caller, status: str, requests: tuple[tuple[str, dict[str, Any]], ...] = ()
) -> str:
    """A task of ``caller``'s tenant in ``status``, with the worker's ``requests`` events after it."""

    async def insert() -> str:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            tenant = await session.get_one(Tenant, caller.tenant_id)
            task = await make_task(session, tenant, status=TaskStatus(status))
            for type_, payload in requests:
                session.add(Event(tenant_id=tenant.id, task_id=task.id, type=type_, payload=payload))
            return str(task.id)

    return run(insert())


def add_event(api: Api, task_id: str, type_: str, payload: dict[str, Any]) -> None:
    async def insert() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            task = await session.get_one(Task, uuid.UUID(task_id))
            session.add(Event(tenant_id=task.tenant_id, task_id=task.id, type=type_, payload=payload))

    run(insert())


def set_status(api: Api, task_id: str, status: str) -> None:
    async def update() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            task = await session.get_one(Task, uuid.UUID(task_id))
            task.status = TaskStatus(status)

    run(update())


def events(api: Api, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    async def read() -> list[tuple[str, dict[str, Any]]]:
        async with open_sessions(api.db_url) as sessions, sessions() as session:
            rows = await session.scalars(
                select(Event).where(Event.task_id == uuid.UUID(task_id)).order_by(Event.id)
            )
            return [(e.type, e.payload) for e in rows]

    return run(read())


CONFIRM_ASKED = ("task.confirmation_requested", {"message": "Pay 10 EUR", "action": {"action": "Tap"}})
TAKEOVER_ASKED = ("task.takeover_requested", {"message": "Please log in"})
QUESTION_ASKED = ("task.question", {"question": "Which size?"})


def handed_back(index: int, note: str) -> tuple[str, dict[str, Any]]:
    """The ``task.step`` event of the person's hand-back step."""
    text = f'do(action="Hand_back", message="{note}")'
    return (
        "task.step",
        {"index": index, "action_text": text, "result": "ok", "current_app": None, "actor": "user"},
    )


# route, a valid body, the statuses it is allowed in (given the request event it needs)
ROUTES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("confirm", {"approved": True}, {"awaiting_confirmation"}),
    ("takeover", {"note": "mine now"}, {"running", "waiting_for_user"}),
    ("handback", {"note": "done"}, {"waiting_for_user", "user_control"}),
    ("reply", {"answer": "medium"}, {"waiting_for_user"}),
]
REQUEST_FOR = {
    "confirm": CONFIRM_ASKED,
    "takeover": TAKEOVER_ASKED,
    "handback": TAKEOVER_ASKED,
    "reply": QUESTION_ASKED,
}


# --- happy paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("approved", [True, False])
def test_confirm_writes_a_confirmation_event(api: Api, approved: bool) -> None:
    caller = api.caller()
    task_id = add_task(api, caller, "awaiting_confirmation", (CONFIRM_ASKED,))
    r = caller.http.post(f"/api/v1/tasks/{task_id}/confirm", json={"approved": approved})
    assert r.status_code == 200, r.text
    assert (
        r.json()["id"] == task_id and r.json()["status"] == "awaiting_confirmation"
    )  # the worker's to change
    assert events(api, task_id) == [CONFIRM_ASKED, ("task.confirmation", {"approved": approved})]

    # Answered once: a second answer would be ignored by the worker, so it is refused.
    again = caller.http.post(f"/api/v1/tasks/{task_id}/confirm", json={"approved": not approved})
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition", again.text
    assert "already answered" in again.json()["message"]
    assert len(events(api, task_id)) == 2


def test_takeover_of_a_running_task_is_recorded_once_until_handback(api: Api) -> None:
    caller = api.caller()
    task_id = add_task(api, caller, "running")
    for _ in range(2):  # asking twice records one takeover
        r = caller.http.post(f"/api/v1/tasks/{task_id}/takeover", json={"note": "let me"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "running"
    assert events(api, task_id) == [
        ("task.takeover", {"status": "running", "note": "let me", "user_id": ANY})
    ]

    # The worker pauses and reports user_control; the person hands back.
    set_status(api, task_id, "user_control")
    r = caller.http.post(f"/api/v1/tasks/{task_id}/handback", json={"note": "done, carry on"})
    assert r.status_code == 200 and r.json()["status"] == "user_control", r.text
    set_status(api, task_id, "running")
    r = caller.http.post(f"/api/v1/tasks/{task_id}/takeover")  # no body: the note is optional
    assert r.status_code == 200, r.text
    assert events(api, task_id)[1:] == [
        ("task.handback", {"note": "done, carry on"}),
        handed_back(0, "done, carry on"),
        ("task.takeover", {"status": "running", "note": None, "user_id": ANY}),
    ]
    # The hand-back is the person's step in the trajectory, its note shown with it.
    (step,) = caller.http.get(f"/api/v1/tasks/{task_id}/steps").json()["items"]
    assert step["actor"] == "user" and step["note"] == "done, carry on" and step["index"] == 0
    assert step["action"] == {"name": "Hand_back", "message": "done, carry on"}


def test_handback_answers_the_agents_takeover_request(api: Api) -> None:
    caller = api.caller()
    task_id = add_task(api, caller, "waiting_for_user", (TAKEOVER_ASKED,))
    r = caller.http.post(f"/api/v1/tasks/{task_id}/takeover", json={})  # taking it is allowed, and recorded
    assert r.status_code == 200, r.text
    r = caller.http.post(f"/api/v1/tasks/{task_id}/handback", json={"note": "logged in"})
    assert r.status_code == 200 and r.json()["status"] == "waiting_for_user", r.text
    assert events(api, task_id) == [
        TAKEOVER_ASKED,
        ("task.takeover", {"status": "waiting_for_user", "note": None, "user_id": ANY}),
        ("task.handback", {"note": "logged in"}),
        handed_back(0, "logged in"),
    ]
    again = caller.http.post(f"/api/v1/tasks/{task_id}/handback", json={"note": "twice"})
    assert again.status_code == 409 and "already answered" in again.json()["message"], again.text


def test_reply_answers_the_pending_question_only(api: Api) -> None:
    caller = api.caller()
    task_id = add_task(api, caller, "waiting_for_user", (QUESTION_ASKED,))
    # A handback is not what a question waits for.
    r = caller.http.post(f"/api/v1/tasks/{task_id}/handback", json={"note": "x"})
    assert r.status_code == 409 and "task.question" in r.json()["message"], r.text

    r = caller.http.post(f"/api/v1/tasks/{task_id}/reply", json={"answer": "medium"})
    assert r.status_code == 200 and r.json()["id"] == task_id, r.text
    assert events(api, task_id) == [QUESTION_ASKED, ("task.reply", {"answer": "medium"})]
    again = caller.http.post(f"/api/v1/tasks/{task_id}/reply", json={"answer": "large"})
    assert again.status_code == 409 and "already answered" in again.json()["message"], again.text

    # The agent asks again: a newer question than the last reply can be answered.
    add_event(api, task_id, *QUESTION_ASKED)
    r = caller.http.post(f"/api/v1/tasks/{task_id}/reply", json={"answer": "large"})
    assert r.status_code == 200, r.text
    assert events(api, task_id)[-1] == ("task.reply", {"answer": "large"})


def test_reply_while_the_agent_waits_for_a_takeover_is_a_409(api: Api) -> None:
    caller = api.caller()
    # An old question nobody answered (the agent went on), then a takeover request.
    task_id = add_task(api, caller, "waiting_for_user", (QUESTION_ASKED, TAKEOVER_ASKED))
    r = caller.http.post(f"/api/v1/tasks/{task_id}/reply", json={"answer": "late"})
    assert r.status_code == 409, r.text
    assert "task.takeover_requested" in r.json()["message"]


@pytest.mark.parametrize(("route", "request_"), [("confirm", CONFIRM_ASKED), ("reply", QUESTION_ASKED)])
def test_answer_before_the_agent_asks_is_a_409(api: Api, route: str, request_: Any) -> None:
    """The worker sets the status just before it writes its request; an answer in between is refused."""
    caller = api.caller()
    status = "awaiting_confirmation" if route == "confirm" else "waiting_for_user"
    task_id = add_task(api, caller, status)
    body = next(b for name, b, _ in ROUTES if name == route)
    r = caller.http.post(f"/api/v1/tasks/{task_id}/{route}", json=body)
    assert r.status_code == 409 and "not asked yet" in r.json()["message"], r.text
    assert events(api, task_id) == []


# --- wrong states, other tenants, bad bodies ---------------------------------------------------


@pytest.mark.parametrize(("route", "body", "allowed"), ROUTES, ids=[r[0] for r in ROUTES])
def test_each_route_is_a_409_outside_its_states(
    api: Api, route: str, body: dict[str, Any], allowed: set[str]
) -> None:
    caller = api.caller()
    for status in ALL_STATUSES:
        if status in allowed:
            continue
        task_id = add_task(api, caller, status, (REQUEST_FOR[route],))
        r = caller.http.post(f"/api/v1/tasks/{task_id}/{route}", json=body)
        assert r.status_code == 409, (route, status, r.text)
        err = r.json()
        assert err["error"] == "invalid_transition" and status in err["message"], err
        assert events(api, task_id) == [REQUEST_FOR[route]], (route, status)  # nothing written


@pytest.mark.parametrize(("route", "body", "allowed"), ROUTES, ids=[r[0] for r in ROUTES])
def test_another_tenants_task_is_a_404(api: Api, route: str, body: dict[str, Any], allowed: set[str]) -> None:
    owner, stranger = api.caller(), api.caller()
    task_id = add_task(api, owner, sorted(allowed)[0], (REQUEST_FOR[route],))
    for who, tid in [(stranger, task_id), (owner, str(uuid.uuid4()))]:
        r = who.http.post(f"/api/v1/tasks/{tid}/{route}", json=body)
        assert r.status_code == 404, (route, r.text)
        assert r.json()["error"] == "task_not_found"
    assert events(api, task_id) == [REQUEST_FOR[route]]  # untouched


BAD_BODIES: list[tuple[str, Any]] = [
    ("confirm", {}),
    ("confirm", {"approved": "yes"}),
    ("confirm", {"approved": 1}),
    ("confirm", {"approved": None}),
    ("confirm", {"approved": True, "extra": 1}),
    ("confirm", None),
    ("takeover", {"note": "x" * 2001}),
    ("takeover", {"note": 5}),
    ("takeover", {"note": "a\u0000b"}),
    ("takeover", {"who": "me"}),
    ("handback", {}),
    ("handback", {"note": "x" * 2001}),
    ("handback", {"note": None}),
    ("handback", {"note": "\ud800"}),
    ("handback", None),
    ("reply", {}),
    ("reply", {"answer": ""}),
    ("reply", {"answer": "x" * 2001}),
    ("reply", {"answer": ["medium"]}),
    ("reply", {"answer": "a\u0000b"}),
    ("reply", None),
]


def test_bad_bodies_are_a_422_and_write_nothing(api: Api) -> None:
    caller = api.caller()
    task_for = {
        "confirm": add_task(api, caller, "awaiting_confirmation", (CONFIRM_ASKED,)),
        "takeover": add_task(api, caller, "running"),
        "handback": add_task(api, caller, "user_control"),
        "reply": add_task(api, caller, "waiting_for_user", (QUESTION_ASKED,)),
    }
    for route, body in BAD_BODIES:
        url = f"/api/v1/tasks/{task_for[route]}/{route}"
        # json.dumps escapes NULs and lone surrogates (httpx's json= could not encode the latter).
        r = caller.http.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (route, str(body)[:60], r.text)
        assert r.json()["error"] == "validation_error", r.text
        assert "x" * 100 not in r.text  # the input is not echoed back
    r = caller.http.post("/api/v1/tasks/not-a-uuid/reply", json={"answer": "x"})
    assert r.status_code == 422, r.text
    assert events(api, task_for["takeover"]) == []
    assert events(api, task_for["handback"]) == []
    assert len(events(api, task_for["confirm"])) == 1 and len(events(api, task_for["reply"])) == 1
