"""Tries (worker/run/tries.py) against a real virtual phone and a scripted model server: a try that
fails its own way is followed by another whose first turn tells the model what went wrong, and
other ends stop the tries. The database side (events, steps, result.tries) is checked end to end
in tests/worker/runtask/test_tries.py."""

from __future__ import annotations

from typing import Any

from device_pool.driver import AdbDevice
from tests.aio import run
from tests.worker.agent.model_servers import ModelServer, Reply, serve
from tests.worker.agent.test_loop import client
from worker.agent.loop import AgentConfig, run_agent
from worker.agent.prompts import EARLIER_TRIES_HEADER
from worker.agent.results import AgentResult, FailReason, RunStatus
from worker.agent.steering import AgentHooks, AgentSteering
from worker.run.tries import Tries, run_tries

GARBAGE = Reply("no action here " * 5, usage=None)


class Written(AgentHooks):
    """The run's events and step numbering, kept in memory: ``TaskRows`` needs a database, and what
    is checked here is what the model is told (the database side is tested end to end)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def add_event(self, type_: str, payload: dict[str, Any]) -> int:
        self.events.append((type_, payload))
        return len(self.events)

    def new_try(self) -> list[int]:
        return []


def tries_of(device: AdbDevice, server: ModelServer, *, max_tries: int, steering: AgentSteering) -> Tries:
    written = Written()

    async def body() -> Tries:
        async with client(server.base_url) as model:

            async def run_try(earlier: str | None) -> AgentResult:
                config = AgentConfig(max_parse_errors=2)
                return await run_agent("Do something", device, model, config=config, steering=steering,
                                       earlier_tries=earlier)  # fmt: skip

            return await run_tries(run_try, max_tries=max_tries, rows=written, hooks=written,
                                   steering=steering, lang="en", budget_left=lambda: 60.0)  # fmt: skip

    tries = run(body())
    tries.written = written  # type: ignore[attr-defined]
    return tries


def first_user_text(seen: Any) -> str:
    user = next(m for m in seen.body["messages"] if m["role"] == "user")
    content = user["content"]
    return content if isinstance(content, str) else "".join(p["text"] for p in content if p.get("type") == "text")


def test_a_failed_try_is_followed_by_one_that_is_told_why(fresh_device: AdbDevice) -> None:
    with serve(ModelServer(GARBAGE, GARBAGE, Reply('finish(message="done")'))) as server:
        tries = tries_of(fresh_device, server, max_tries=2, steering=AgentSteering())
        requests = list(server.requests)
    assert tries.result.status == RunStatus.SUCCEEDED and tries.succeeded_on_try == 2
    assert tries.result.message == "done (succeeded on try 2 of 2)"
    assert [r.result.reason for r in tries.records] == [FailReason.PARSE_ERRORS, None]
    assert len(tries.result.steps) == 3  # both tries' steps
    assert EARLIER_TRIES_HEADER not in first_user_text(requests[0])
    told = first_user_text(requests[2])  # the second try's first turn
    assert told.startswith("Do something") and EARLIER_TRIES_HEADER in told
    assert "Try 1 failed (parse_errors): 2 replies in a row held no valid action" in told, told
    ((kind, payload),) = tries.written.events  # type: ignore[attr-defined]
    assert kind == "task.try_started" and payload["try"] == 2 and payload["after"]["reason"] == "parse_errors"


def test_the_last_try_ends_the_task_and_a_cancel_ends_the_tries(fresh_device: AdbDevice) -> None:
    with serve(ModelServer(default=GARBAGE)) as server:
        tries = tries_of(fresh_device, server, max_tries=2, steering=AgentSteering())
    assert tries.result.reason == FailReason.PARSE_ERRORS and len(tries.records) == 2
    assert tries.succeeded_on_try is None and "succeeded_on_try" not in tries.summary()

    steering = AgentSteering()
    steering.cancel("cancelled by user")
    with serve(ModelServer(default=GARBAGE)) as server:
        tries = tries_of(fresh_device, server, max_tries=3, steering=steering)
    assert tries.result.status == RunStatus.CANCELLED and len(tries.records) == 1
