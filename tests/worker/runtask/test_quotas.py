"""Tenant quotas through the real API, a real worker process, a pool of two virtual phones and the
sweeper's quota pass: with ``max_concurrent_tasks = 1`` a second task waits (``waiting.kind =
quota``, the limit named) while a phone is free, and runs once the first ends; ``GET /api/v1/usage``
then adds up to what ran (tasks, model tokens, phone-minutes from the leases)."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from orchestrator.db import Tenant, make_engine, make_sessionmaker
from orchestrator.db.database import Database
from orchestrator.services.sweeper import TaskSweeper
from tests.aio import run
from tests.conditions import wait_until
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker
from tests.worker.runtask.test_run_task import answer_over_http
from tests.worker.runtask.test_waiting import waiting_changes, waits


def _limit_tenant(api: Api, tenant_id: str, **limits: int) -> None:
    async def write() -> None:
        engine = make_engine(api.settings.database_url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                await session.execute(
                    update(Tenant).where(Tenant.id == uuid.UUID(tenant_id)).values(limits=limits)
                )
        finally:
            await engine.dispose()

    run(write())


def _sweep_quota(api: Api) -> list[uuid.UUID]:
    """One quota pass of the sweeper (``phonefleet pool`` makes one every tick)."""

    async def sweep() -> list[uuid.UUID]:
        engine = make_engine(api.settings.database_url)
        try:
            sweeper = TaskSweeper(Database(make_sessionmaker(engine)), api.queue, stale_after_s=60.0)
            return (await sweeper.sweep_quota()).requeued
        finally:
            await engine.dispose()

    return run(sweep())


def test_a_second_task_waits_for_the_quota_then_runs_and_usage_adds_up(
    api: Api, two_phones: Pool, start_worker: StartWorker
) -> None:
    tenant_id = api.http.get("/api/v1/usage").json()["tenant_id"]
    _limit_tenant(api, tenant_id, max_concurrent_tasks=1)
    limits = api.http.get(f"/api/v1/tenants/{tenant_id}/limits").json()
    assert (
        limits["limits"]["max_concurrent_tasks"] == 1 and limits["defaults"]["max_concurrent_tasks"] is None
    )

    replies = [Reply('do(action="Interact", message="Which size?")')]
    with serve(ModelServer(*replies, default=Reply('finish(message="done")'))) as model:
        start_worker(model.base_url)
        first = api.submit("Buy a shirt", timeout_s=120)
        waits(api, first["id"], "question")  # it holds a phone, waiting for a person
        second = api.submit("Open Settings", timeout_s=120)
        held = waits(api, second["id"], "quota")
        assert held["status"] == "queued", held
        assert held["waiting"]["message"].startswith("max_concurrent_tasks: the tenant runs 1 tasks of 1")
        assert _sweep_quota(api) == []  # no room yet: nothing is sent again
        assert api.task(second["id"])["waiting"]["kind"] == "quota"

        answer_over_http(api, first["id"], "task.question", "reply", {"answer": "medium"})
        api.wait_status(first["id"], ("succeeded",), timeout=60)
        # Room now: the quota pass sends the waiting task again, and it runs.
        wait_until(lambda: _sweep_quota(api) == [uuid.UUID(second["id"])], timeout=30, interval=0.2,
                   what="the quota pass re-sending the second task")  # fmt: skip
        done = api.wait_status(second["id"], ("succeeded",), timeout=60)
    assert done["waiting"] is None
    kinds = [kind for _, kind in waiting_changes(api, second["id"])]
    assert "quota" in kinds and kinds.index("quota") < len(kinds) - 1, kinds

    # The run gives its phone back just after it writes the end.
    wait_until(lambda: all(lease.released_at for t in (first, second) for lease in api.rows(t["id"])[2]),
               timeout=30, interval=0.05, what="both leases released")  # fmt: skip
    usage = api.http.get("/api/v1/usage", params={"days": 2}).json()
    today = usage["days"][-1]
    steps = [
        s for t in (first, second) for s in api.http.get(f"/api/v1/tasks/{t['id']}/steps").json()["items"]
    ]
    assert today["tasks"] == 2 and today["tasks_succeeded"] == 2 and usage["totals"]["tasks"] == 2
    assert today["prompt_tokens"] == sum(s["prompt_tokens"] or 0 for s in steps) > 0
    assert today["completion_tokens"] == sum(s["completion_tokens"] or 0 for s in steps) > 0
    leases = [lease for t in (first, second) for lease in api.rows(t["id"])[2]]
    used = sum((lease.released_at - lease.acquired_at).total_seconds() for lease in leases)
    assert len(leases) == 2 and abs(today["phone_minutes"] - used / 60) < 0.01, (today, used)
    assert usage["now"]["tasks"] == 0 and usage["limits"]["max_concurrent_tasks"] == 1
