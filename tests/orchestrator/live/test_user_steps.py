"""A person's input during a takeover is part of the task's trajectory: steps with ``actor`` user.

Real parts throughout: a virtual phone, the real adb server, the API over HTTP and an aiortc viewer
sending on the ``control`` channel; what is checked is what ``/steps`` and the events say after.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from orchestrator.db import Event, TaskStatus, make_engine, make_sessionmaker
from orchestrator.db.steps import insert_step
from tests.aio import run
from tests.orchestrator.conftest import StartApi
from tests.orchestrator.live.conftest import (
    PHONE,
    add_task,
    http_for,
    lease_phone,
    live_settings,
    ticking_phone,
    user_of,
)  # fmt: skip
from tests.orchestrator.live.peer import LiveClient
from tests.processes import AdbServer, SimPhones
from tests.ui import wait_for_node


def _norm(point: tuple[int, int]) -> dict[str, float]:
    return {"x": point[0] / PHONE[0], "y": point[1] / PHONE[1]}


async def _agent_step(db_url: str, task_id: uuid.UUID) -> int:
    """An agent's step, written as the worker writes its steps (the next index of the task)."""
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            row = {"action_text": 'do(action="Launch", app="Notes")', "action": {"name": "Launch", "app": "Notes"},
                   "result": "ok", "timings": {}}  # fmt: skip
            return await insert_step(session, task_id, row)
    finally:
        await engine.dispose()


async def _step_events(db_url: str, task_id: uuid.UUID) -> list[dict]:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(Event.payload)
                .where(Event.task_id == task_id, Event.type == "task.step")
                .order_by(Event.id)
            )
            return list(rows)
    finally:
        await engine.dispose()


def test_a_persons_input_is_recorded_as_steps_in_order_with_the_agents(
    start_api: StartApi, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones
) -> None:
    # Text sent within the quiet time is one burst (one Type step): a long quiet time keeps each
    # burst whole however slowly this machine sends its parts (the next input or the hand-back
    # still closes a step at once).
    live_api = start_api(migrated_pg_url, webrtc=live_settings(adb_server.port, user_step_quiet_s=10))
    caller = live_api.caller()

    async def scenario() -> tuple[list[dict], list[dict], bytes]:
        phone = await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        user = await user_of(live_api.db_url, caller)
        task_id = await add_task(
            live_api.db_url, caller.tenant_id, TaskStatus.USER_CONTROL, took_over_by=user
        )
        assert await _agent_step(live_api.db_url, task_id) == 0
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id, task_id=task_id),
            http_for(live_api, caller) as http,
        ):
            await phone.launch("com.phonefleet.notes")
            fab = await wait_for_node(phone, rid="fab_new")
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/tasks/{task_id}/webrtc")
                assert r.status_code == 200, r.text
                assert (await client.wait_message("hello"))["control"] is True
                screen = await client.request({"type": "screen"})
                assert screen["ok"] is True and screen["screen"] == {"protected": False, "elements": []}, (
                    screen
                )
                assert (await client.request({"type": "tap", **_norm(fab.center)}))["ok"] is True
                title = await wait_for_node(phone, rid="note_title")
                assert (await client.request({"type": "tap", **_norm(title.center)}))["ok"] is True
                for part in ("buy ", "milk"):  # one burst: one Type step
                    assert (await client.request({"type": "text", "text": part}))["ok"] is True
                assert (await client.request({"type": "key", "key": "back"}))["ok"] is True

                # The Bank's login: a secure window; the password is never stored in clear.
                await phone.launch("Bank")
                username = await wait_for_node(phone, rid="username")
                password = await wait_for_node(phone, rid="password")
                # A secure window: the live view is told so, with the elements of its view tree.
                screen = (await client.request({"type": "screen"}))["screen"]
                assert screen["protected"] is True, screen
                fields = {e["label"]: e for e in screen["elements"]}
                assert fields["Password"]["password"] is True and fields["Password"]["editable"] is True
                assert fields["Log in"]["clickable"] is True
                left, top, right, bottom = fields["Password"]["bounds"]
                assert (
                    left < password.center[0] / PHONE[0] < right
                    and top < password.center[1] / PHONE[1] < bottom
                )
                assert (await client.request({"type": "tap", **_norm(username.center)}))["ok"] is True
                assert (await client.request({"type": "text", "text": "demo"}))["ok"] is True
                assert (await client.request({"type": "tap", **_norm(password.center)}))["ok"] is True
                await wait_for_node(phone, rid="password")  # focus moved (the tree is re-read)
                for part in ("12", "34"):
                    assert (await client.request({"type": "text", "text": part}))["ok"] is True

                # The hand-back records the last action first, then itself with the note.
                r = await http.post(f"/api/v1/tasks/{task_id}/handback", json={"note": "I logged in for you"})
                assert r.status_code == 200, r.text
            finally:
                await client.close()
            steps = (await http.get(f"/api/v1/tasks/{task_id}/steps")).json()["items"]
            shot = await http.get(steps[1]["screenshot_url"])
            assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
            events = await _step_events(live_api.db_url, task_id)
            return steps, events, shot.content

    steps, events, jpeg = run(scenario())
    assert [s["index"] for s in steps] == list(range(len(steps)))
    assert [s["actor"] for s in steps] == ["agent"] + ["user"] * (len(steps) - 1)
    names = [s["action"]["name"] for s in steps]
    assert names == ["Launch", "Tap", "Tap", "Type", "Back", "Tap", "Type", "Tap", "Type", "Hand_back"], names
    assert steps[3]["action"] == {"name": "Type", "text": "buy milk"}
    assert steps[6]["action"] == {"name": "Type", "text": "demo"}
    secret = steps[8]
    assert secret["action"] == {"name": "Type", "text": "•••", "redacted": True, "length": 4}
    assert "password" in secret["note"] and "protected" in secret["note"]
    assert (
        steps[-1]["note"] == "I logged in for you" and steps[-1]["action"]["message"] == "I logged in for you"
    )
    # Every person's action has its screenshot (the hand-back alone has none); taps are on the grid.
    assert all(s["screenshot_url"] for s in steps[1:-1])
    assert jpeg[:2] == b"\xff\xd8"
    x, y = steps[1]["action"]["element"]
    assert 0 <= x <= 999 and 0 <= y <= 999
    assert steps[7]["current_app"] == "Bank"
    # The typed password is nowhere: not in the steps, not in their events.
    # What a step or its event says (not its timestamps or ids, where those digits may occur by chance).
    said = [{k: v for k, v in s.items() if k in ("action", "action_text", "note", "thinking")} for s in steps]
    assert "1234" not in json.dumps(said), said
    assert "1234" not in json.dumps([{k: v for k, v in e.items() if k != "at"} for e in events]), events
    assert [e["index"] for e in events] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(e["actor"] == "user" for e in events)
