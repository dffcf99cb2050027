"""Tries: after the agent's own failure, it starts again on the same phone, told what went wrong.

A task's ``max_tries`` (default ``tasks.default_max_tries``, 1) counts the agent's runs on one
attempt's phone; the infrastructure's *attempts* (``tasks.max_infra_attempts``, drive.py) are
counted apart, and each attempt has all its tries. A try that ends with one of ``TRY_AGAIN`` —
stuck, max_steps, parse_errors, or a person asked for help who did not come (needs_user,
no_answer: how "the model said it cannot" ends a worker's run) — is followed by another while tries
are left and the task's budget is not spent: the phone is not reset, the agent starts from the
screen the last try left, and its first turn carries ``prompts.earlier_tries_message`` (each
earlier try's reason and message). Every other end is the task's end (succeeded, timed out,
cancelled, denied, an infrastructure failure).

What is recorded (docs/api.md, "Tries"): a ``task.try_started`` event ``{try, max_tries, after:
{reason, message}}`` before each try after the first; every try's steps in the one trajectory, in
order (``first_step``/``last_step`` say where each try's are); and the task's ``result.tries``
(one object per try) and, on success, ``result.succeeded_on_try``. A success after the first try
says so in the task's message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.agent import prompts
from worker.agent.results import AgentResult, FailReason, RunStatus
from worker.agent.steering import AgentSteering

__all__ = ["TRY_AGAIN", "TRY_STARTED", "Tries", "TryRecord", "run_tries"]

logger = logging.getLogger(__name__)

TRY_STARTED = "task.try_started"
# The agent's failures that another try may mend (the module docstring).
TRY_AGAIN = frozenset(
    {FailReason.MAX_STEPS, FailReason.STUCK, FailReason.PARSE_ERRORS, FailReason.NEEDS_USER, FailReason.NO_ANSWER}
)


class _Rows(Protocol):
    async def add_event(self, type_: str, payload: dict[str, Any]) -> int: ...


class _Hooks(Protocol):
    def new_try(self) -> list[int]: ...


@dataclass(frozen=True)
class TryRecord:
    """One try as ``result.tries`` shows it; ``steps``: the trajectory indexes its steps got."""

    number: int
    result: AgentResult
    steps: list[int]

    def to_json(self) -> dict[str, Any]:
        return {
            "try": self.number,
            "status": str(self.result.status),
            "reason": str(self.result.reason) if self.result.reason else None,
            "message": self.result.message,
            "steps": len(self.steps),
            "first_step": self.steps[0] if self.steps else None,
            "last_step": self.steps[-1] if self.steps else None,
            "elapsed_s": round(self.result.elapsed_s, 3),
        }


@dataclass
class Tries:
    """Every try of one attempt, and the attempt's result: the last try's end over all their steps."""

    result: AgentResult
    records: list[TryRecord] = field(default_factory=list)

    @property
    def succeeded_on_try(self) -> int | None:
        if self.result.status != RunStatus.SUCCEEDED or not self.records:
            return None
        return self.records[-1].number

    def summary(self) -> dict[str, Any]:
        """The task result's fields: ``tries`` and, on success, ``succeeded_on_try``."""
        out: dict[str, Any] = {"tries": [record.to_json() for record in self.records]}
        if self.succeeded_on_try is not None:
            out["succeeded_on_try"] = self.succeeded_on_try
        return out


def tries_again(result: AgentResult, steering: AgentSteering) -> bool:
    """Whether ``result`` is an agent failure another try may mend (and nobody stopped the run)."""
    return result.status == RunStatus.FAILED and result.reason in TRY_AGAIN and not steering.cancelled


async def run_tries(
    run_try: Callable[[str | None], Awaitable[AgentResult]],
    *,
    max_tries: int,
    rows: _Rows,
    hooks: _Hooks,
    steering: AgentSteering,
    lang: str,
    budget_left: Callable[[], float],
) -> Tries:
    """Run ``run_try(earlier_tries)`` until a try ends otherwise than ``TRY_AGAIN``, ``max_tries``
    tries were made, or ``budget_left()`` is spent."""
    records: list[TryRecord] = []
    failures: list[tuple[str, str]] = []
    number = 1
    while True:
        earlier = prompts.earlier_tries_message(lang, failures) if failures else None
        result = await run_try(earlier)
        records.append(TryRecord(number, result, hooks.new_try()))
        if number >= max_tries or not tries_again(result, steering) or budget_left() <= 0:
            break
        failures.append((str(result.reason), result.message))
        number += 1
        logger.info("the agent failed; trying again on the same phone",
                    extra={"try": number, "max_tries": max_tries, "after": str(result.reason)})  # fmt: skip
        await rows.add_event(
            TRY_STARTED,
            {"try": number, "max_tries": max_tries,
             "after": {"reason": str(result.reason), "message": result.message}},
        )  # fmt: skip
    last = records[-1].result
    message = last.message
    if last.status == RunStatus.SUCCEEDED and number > 1:
        message = f"{message} (succeeded on try {number} of {max_tries})"
    combined = AgentResult(
        last.status, message, last.reason,
        steps=[step for record in records for step in record.result.steps],
        elapsed_s=sum(record.result.elapsed_s for record in records),
    )  # fmt: skip
    return Tries(combined, records)
