"""A task's steps and screenshots over real HTTP (steps inserted as a worker would record them)."""

from __future__ import annotations

import uuid
from pathlib import Path

from orchestrator.db import Step, TaskStatus
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.api.test_tasks import add_tasks

JPEG = b"\xff\xd8\xff\xe0" + b"fake jpeg body" * 10 + b"\xff\xd9"


def add_steps(db_url: str, task_id: uuid.UUID, count: int, screenshot: dict[int, str]) -> None:
    async def insert() -> None:
        async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
            for i in range(count):
                session.add(Step(task_id=task_id, index=i, screenshot=screenshot.get(i), current_app="Settings",
                                 thinking=f"step {i}", action_text='do(action="Tap", element=[500,500])',
                                 action={"action": "Tap", "element": [500, 500]}, result="ok",
                                 timings={"capture_s": 0.01, "model_s": 0.5}))  # fmt: skip

    run(insert())


def test_steps_page_in_order_and_screenshots_are_served(api: Api) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.RUNNING}])
    shot = Path("screenshots") / str(task_id) / "0003.jpg"
    (api.settings.data_dir / shot).parent.mkdir(parents=True)
    (api.settings.data_dir / shot).write_bytes(JPEG)
    add_steps(api.db_url, task_id, 8, {3: str(shot), 5: "screenshots/missing.jpg"})

    indexes, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = caller.http.get(f"/api/v1/tasks/{task_id}/steps", params=params).json()
        indexes += [s["index"] for s in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
        if 3 in [s["index"] for s in page["items"]]:
            step3 = next(s for s in page["items"] if s["index"] == 3)
    assert indexes == list(range(8))
    assert step3["screenshot_url"] == f"/api/v1/tasks/{task_id}/steps/3/screenshot"
    assert step3["action"] == {"action": "Tap", "element": [500, 500]} and step3["timings"]["model_s"] == 0.5

    r = caller.http.get(step3["screenshot_url"])
    assert r.status_code == 200 and r.content == JPEG and r.headers["content-type"] == "image/jpeg"

    for index, code in [(0, "screenshot_not_found"), (5, "screenshot_not_found"), (99, "step_not_found")]:
        r = caller.http.get(f"/api/v1/tasks/{task_id}/steps/{index}/screenshot")
        assert r.status_code == 404 and r.json()["error"] == code, (index, r.text)


def test_screenshot_outside_data_dir_is_never_served(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{}])
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours")
    add_steps(api.db_url, task_id, 1, {0: "../outside.txt"})
    r = caller.http.get(f"/api/v1/tasks/{task_id}/steps/0/screenshot")
    assert r.status_code == 404 and "not yours" not in r.text
