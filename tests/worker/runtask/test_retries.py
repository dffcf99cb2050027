"""Infrastructure failures are retried, agent failures are not (docs/control-plane.md, "Retries"):
real worker processes, virtual phones, model servers that fail as told, followed through the API
and the database."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from device_pool.providers import SimProvider
from orchestrator.db import DeviceState
from tests.conditions import port_open, wait_until
from tests.worker.agent.model_servers import Gate, ModelServer, Reply, Status, dead_url, serve
from tests.worker.runtask.conftest import Api, Pool, StartWorker
from tests.worker.runtask.test_run_task import answer_over_http
from tests.worker.runtask.test_waiting import waits
from worker.run.rows import retry_refusal

TAP = 'do(action="Tap", element=[500,500])'
FINISH = 'finish(message="done")'
QUICK_RETRIES = {"PHONEFLEET_TASKS__RETRY_BACKOFF_S": "0.2"}


def moves(api: Api, task_id: str) -> list[tuple[str, str]]:
    """(from, to) of the task's status changes, in order."""
    return [(e.payload["from"], e.payload["to"]) for e in api.rows(task_id)[1] if e.type == "task.status"]


def retries(api: Api, task_id: str) -> list[dict[str, Any]]:
    """The payloads of the task's ``task.retrying`` events, in order."""
    return [e.payload for e in api.rows(task_id)[1] if e.type == "task.retrying"]


def attempt(n: int, end: str = "succeeded") -> list[tuple[str, str]]:
    """The status changes of attempt ``n`` (2 and on start from ``queued`` again) ending in ``end``."""
    return [("queued", "leasing"), ("leasing", "running"), ("running", end)]


def test_a_model_server_down_for_a_while_is_waited_for_within_one_attempt(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    # Eight 503s: two calls' worth of the client's own retries (4 requests each). The run waits the
    # outage out (model.outage_budget_s, 120 s by default) instead of ending; the ninth is answered.
    with serve(ModelServer(*[Status(503, "overloaded")] * 8, Reply(FINISH))) as model:
        start_worker(model.base_url, **QUICK_RETRIES)
        task = api.submit("Open Settings", timeout_s=120)
        seen = waits(api, task["id"], "model_unavailable")
        done = api.wait_status(task["id"], ("succeeded",), timeout=90)
    assert done["attempts"] == 1 and done["waiting"] is None and len(model.requests) == 9, done
    message = seen["waiting"]["message"]
    assert "HTTP 503" in message and "failing since" in message and "at the latest" in message, message
    assert retries(api, task["id"]) == [] and moves(api, task["id"]) == attempt(1)
    pool.settle()


def test_a_model_server_down_past_its_budget_is_retried_then_fails_on_the_last_attempt(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    start_worker(dead_url(), PHONEFLEET_MODEL__OUTAGE_BUDGET_S="1", **QUICK_RETRIES)
    task = api.submit("Open Settings", timeout_s=120)
    with pool.managed():  # each attempt's phone is reset for the next, as `phonefleet pool` does
        seen = waits(api, task["id"], "retrying")
        done = api.wait_status(task["id"], ("failed",), timeout=120)
    assert seen["status"] == "queued" and seen["waiting"]["message"].startswith(
        "attempt 1 of 3 ended: model"
    ), seen
    assert done["reason"] == "model_unavailable" and done["attempts"] == 3, done
    assert "not retried: no attempts left (3 of 3)" in done["message"], done

    announced = retries(api, task["id"])
    assert [(r["attempt"], r["next_attempt"], r["reason"]) for r in announced] == [
        (1, 2, "model_unavailable"), (2, 3, "model_unavailable"),
    ], announced  # fmt: skip
    assert all(r["delay_s"] > 0 and r["retry_at"] and r["avoid_device"] is False for r in announced)
    assert moves(api, task["id"]) == (
        attempt(1, "queued") + attempt(2, "queued") + attempt(3, "failed")
    )  # fmt: skip
    row, _, leases = api.rows(task["id"])
    assert len(leases) == 3 and row.waiting is None and row.retry_at is None
    pool.settle()


def test_a_phone_that_fails_is_avoided_on_the_retry(
    api: Api, two_phones: Pool, start_worker: StartWorker
) -> None:
    pool = two_phones
    failing, other = pool.devices()
    provider = pool.manager.provider
    assert isinstance(provider, SimProvider)
    # The other phone is someone else's for now: the task's first attempt gets the failing one.
    held = pool.loop.call(
        pool.store.acquire(holder="someone-else", tenant_id=None, ttl_s=300, avoid=[failing.id])
    )
    assert held is not None and held.device_id == other.id
    gate = threading.Event()
    with serve(ModelServer(Gate(gate, Reply(TAP)), Reply(FINISH))) as model:
        start_worker(model.base_url, **QUICK_RETRIES)
        task = api.submit("Open Settings", timeout_s=120)
        api.wait_status(task["id"], ("running",), timeout=30)
        wait_until(lambda: model.requests, timeout=30, what="the agent asked the model")
        # The phone dies while the model thinks: the agent's tap goes to a phone that is gone.
        pid, port = provider.pid(failing.serial), int(failing.serial.rsplit(":", 1)[1])
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the phone process this test's pool started
        wait_until(lambda: not port_open("127.0.0.1", port), timeout=10, what="the phone's port closed")
        gate.set()

        # The second attempt avoids the failed phone: it waits for another one, though the failed
        # phone is reset (its process started again) and idle.
        waiting = waits(api, task["id"], "no_device")
        assert "other than the one an earlier attempt failed on" in waiting["waiting"]["message"], waiting
        pool.reconcile_until(lambda rows: _state(rows, failing.id) == DeviceState.IDLE)
        # Released, the other phone is reset after the failed one: idle for less time, so a lease
        # that did not avoid the failed phone would take that one (the idle-longest rule).
        assert pool.loop.call(pool.store.release(held.lease_id, held.holder))
        pool.reconcile_until(lambda rows: _state(rows, other.id) != DeviceState.RESETTING)
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)

    assert done["attempts"] == 2 and done["device_id"] == str(other.id), done
    [retry] = retries(api, task["id"])
    assert (retry["attempt"], retry["reason"], retry["device_id"], retry["avoid_device"]) == (
        1, "device_error", str(failing.id), True,
    ), retry  # fmt: skip
    _, _, leases = api.rows(task["id"])
    assert [lease.device_id for lease in leases] == [failing.id, other.id], leases
    assert moves(api, task["id"]) == attempt(1, "queued") + attempt(2)
    pool.settle()


def _state(rows: list[Any], device_id: Any) -> DeviceState:
    return next(DeviceState(row.state) for row in rows if row.id == device_id)


def test_an_agent_failure_is_not_retried(api: Api, pool: Pool, start_worker: StartWorker) -> None:
    with serve(ModelServer(default=Reply(TAP))) as model:
        start_worker(model.base_url, **QUICK_RETRIES)
        task = api.submit("Open Settings", timeout_s=120, max_steps=1)
        done = api.wait_status(task["id"], ("failed",), timeout=60)
    assert done["reason"] == "max_steps" and done["attempts"] == 1, done
    assert retries(api, task["id"]) == [] and moves(api, task["id"]) == attempt(1, "failed")
    pool.settle()


@pytest.mark.parametrize("case", ["retry_after_acting_false", "sensitive_step"])
def test_a_task_that_acted_is_not_retried_unless_it_may(
    api: Api, pool: Pool, start_worker: StartWorker, case: str
) -> None:
    """The model server goes down for good after one action: an infrastructure end, but the task
    acted on the phone and its rule says no retry."""
    sensitive = case == "sensitive_step"
    first = 'do(action="Tap", element=[500,500], message="Pay 10 EUR")' if sensitive else TAP
    with serve(ModelServer(Reply(first), default=Status(503, "down"))) as model:
        start_worker(model.base_url, PHONEFLEET_MODEL__OUTAGE_BUDGET_S="0.5", **QUICK_RETRIES)
        task = api.submit("Pay the bill", timeout_s=120, retry_after_acting=None if sensitive else False)
        assert task["retry_after_acting"] == (None if sensitive else False)
        if sensitive:
            answer_over_http(api, task["id"], "task.confirmation_requested", "confirm", {"approved": True})
        done = api.wait_status(task["id"], ("failed",), timeout=90)
    assert done["reason"] == "model_unavailable" and done["attempts"] == 1, done
    why = "made a sensitive step" if sensitive else "retry_after_acting is false"
    assert f"not retried: it had acted on the phone and {why}" in done["message"], done
    assert retries(api, task["id"]) == []
    pool.settle()


def test_the_retry_rule_after_acting() -> None:
    """``retry_after_acting`` null: retried unless a sensitive step was made; set: as it says."""
    for choice in (None, True, False):
        assert retry_refusal(choice, acted=False, sensitive=False) is None  # nothing done: always
    assert retry_refusal(None, acted=True, sensitive=False) is None
    assert retry_refusal(None, acted=True, sensitive=True) is not None
    assert retry_refusal(True, acted=True, sensitive=True) is None
    assert retry_refusal(False, acted=True, sensitive=False) is not None


def test_a_worker_shutdown_mid_run_requeues_the_task_for_another_worker(
    api: Api, pool: Pool, start_worker: StartWorker
) -> None:
    never = threading.Event()
    with serve(ModelServer(Gate(never, limit_s=300), Reply(FINISH))) as model:
        first = start_worker(model.base_url, concurrency=1, **QUICK_RETRIES)
        task = api.submit("Open Settings", timeout_s=120)
        wait_until(lambda: len(model.requests) == 1, timeout=60, what="the first run's model request")
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(timeout=30) == 0, first.log()
        row, _, _ = api.rows(task["id"])
        assert row.status == "queued" and row.waiting["kind"] == "retrying" and row.attempts == 1, row
        assert "re-queued task's message sent" in first.log(), first.log()
        pool.settle()  # the phone the interrupted run released is reset
        start_worker(model.base_url, concurrency=1, **QUICK_RETRIES)
        done = api.wait_status(task["id"], ("succeeded",), timeout=60)
        never.set()

    assert done["attempts"] == 2 and len(model.requests) == 2, done
    [retry] = retries(api, task["id"])
    assert (retry["attempt"], retry["reason"]) == (1, "worker_shutdown"), retry
    assert moves(api, task["id"]) == attempt(1, "queued") + attempt(2)
    _, _, leases = api.rows(task["id"])
    assert [lease.release_reason for lease in leases] == ["released", "released"], leases
    pool.settle()
