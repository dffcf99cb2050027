"""An eval's ``parallel`` is enforced, not advisory: ``POST /api/v1/evals`` sends only the first N
tasks to the queue (the rest wait, ``waiting.kind = quota``), the worker's claim refuses an eval's
task while N of its tasks are held — claims racing for the last slot included, as workers race — a
task's end sends the next waiting one, and the sweeper's quota pass sends no more than the eval's
room. No phone is needed: the claim and the end are the worker's own statements (``TaskRows``) on
the real PostgreSQL, behind the real API and Redis queue."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select, update

from orchestrator.db import HELD_TASK_STATUSES, Task, TaskStatus, make_engine, make_sessionmaker
from orchestrator.db.database import Database
from orchestrator.db.quotas import EVAL_ROOM_MESSAGE
from orchestrator.services.sweeper import TaskSweeper
from tests.aio import run
from tests.worker.runtask.conftest import Api
from worker.run.rows import TaskRows

PARALLEL = 2


async def _held(db: Database, eval_id: uuid.UUID) -> int:
    async with db.transaction() as s:
        return int(await s.scalar(select(func.count()).where(Task.eval_id == eval_id,
                                                             Task.status.in_(HELD_TASK_STATUSES))) or 0)  # fmt: skip


async def _claim_all(db: Database, ids: list[uuid.UUID]) -> list[TaskRows]:
    """Every id claimed at once, each by a worker of its own (as deliveries race); those that got it."""
    rows = [TaskRows(db, task_id, f"host:{i}/w") for i, task_id in enumerate(ids)]
    claims = await asyncio.gather(*(r.claim(stale_s=60.0, max_attempts=3) for r in rows))
    return [r for r, claim in zip(rows, claims, strict=True) if claim is not None]


def test_at_most_parallel_tasks_of_an_eval_run_at_once(api: Api) -> None:
    body = {"suite": "builtin", "models": ["scripted"], "templates": ["wifi_on", "wifi_off", "add_contact"],
            "repeat": 2, "parallel": PARALLEL}  # fmt: skip
    created = api.http.post("/api/v1/evals", json=body)
    assert created.status_code == 201, created.text
    report = created.json()
    eval_id = uuid.UUID(report["id"])
    ids = [uuid.UUID(t["task_id"]) for t in report["task_list"]]
    assert len(ids) == 6 and api.queued() == PARALLEL  # only the first N were sent
    held_back = [api.task(str(i))["waiting"] for i in ids[PARALLEL:]]
    assert {w["kind"] for w in held_back} == {"quota"}
    assert held_back[0]["message"].startswith(f"parallel: the eval runs at most {PARALLEL} tasks at once")

    async def scenario() -> uuid.UUID:
        engine = make_engine(api.settings.database_url)
        db = Database(make_sessionmaker(engine))
        sweeper = TaskSweeper(db, api.queue, stale_after_s=60.0)
        try:
            # Every task's delivery at once (a duplicate or stale message for the held-back ones): N win.
            running = await _claim_all(db, ids)
            assert len(running) == PARALLEL and await _held(db, eval_id) == PARALLEL
            assert (await sweeper.sweep_quota()).requeued == []  # no room: nothing sent again
            ended = 0
            while running:
                done = running.pop(0)
                assert await done.finish(TaskStatus.SUCCEEDED, reason=None, message="done", result={})
                ended += 1
                # Its end moved the next waiting task back to queued (its message is the worker's to send).
                assert len(done.handed_on) == (1 if ended <= len(ids) - PARALLEL else 0), (ended, done.handed_on)
                async with db.transaction() as s:  # those whose message was sent (the handed-on one)
                    queued = (await s.scalars(select(Task.id).where(
                        Task.eval_id == eval_id, Task.status == TaskStatus.QUEUED,
                        Task.waiting["kind"].as_string() != "quota"))).all()  # fmt: skip
                # The sweeper adds nothing: the handed-on task holds the freed slot until claimed.
                assert (await sweeper.sweep_quota()).requeued == []
                running += await _claim_all(db, list(queued))
                assert len(running) <= PARALLEL and await _held(db, eval_id) <= PARALLEL
            assert ended == len(ids)

            # The sweeper's part: a slot freed without a hand-off (a run the sweeper itself failed,
            # its worker lost) is filled by the quota pass, up to the eval's room and no further.
            second = api.http.post("/api/v1/evals", json=body | {"repeat": 1}).json()
            more = [uuid.UUID(t["task_id"]) for t in second["task_list"]]
            running = await _claim_all(db, more)
            assert len(running) == PARALLEL
            async with db.transaction(write=True) as s:
                await s.execute(update(Task).where(Task.id == running[0].task_id)
                                .values(status=TaskStatus.FAILED, reason="worker_lost"))  # fmt: skip
            left = [i for i in more if i not in {r.task_id for r in running}]  # the race's loser, waiting
            sent = (await sweeper.sweep_quota()).requeued
            assert sent == left and len(left) == 1, (sent, left)
            assert (await sweeper.sweep_quota()).requeued == []
        finally:
            await engine.dispose()
        return left[0]

    assert api.task(str(run(scenario())))["waiting"]["message"] == EVAL_ROOM_MESSAGE
