"""Task chains: a task's subgoals, run one after another on the same phone, within one lease.

A task with ``subgoals`` (docs/api.md, "Task chains") is run as a chain: for each subgoal in order,
a new agent run on the same phone (not reset in between), whose task is the subgoal and whose
first turn carries the whole task as context (``prompts.chain_message``: the instruction and each
part's goal, with what came of the ones done). Each subgoal has its own tries (``tries.py``,
``max_tries``) and all of ``max_steps``; the task's budget (``timeout_s``) is shared. Its steps
carry its index (``steps.subgoal``).

The chain's state is the task's ``subgoals`` column: one object per subgoal, in order —
``{index, goal, status, reason, message, steps, first_step, last_step, runs, tries, started_at,
finished_at}``, ``status`` one of ``pending``, ``running``, ``succeeded``, ``failed``,
``timed_out``, ``cancelled``, ``skipped`` — rewritten (with a ``task.subgoal`` event carrying the
subgoal that moved) when a subgoal starts and when it ends.

A subgoal that does not succeed ends the chain (``on_step_failure: stop``, the default): the task
ends as that subgoal ended, its message naming it; the subgoals after it stay ``pending`` (never
run). With ``on_step_failure: ask``, a subgoal the agent failed (not a timeout, a cancel, or an
infrastructure failure, which end the chain as with ``stop``) makes the task wait for the person
(``waiting_for_user``, a ``task.question`` naming the subgoal, with ``choices``):

- ``retry``: the subgoal runs again, from the current screen (``runs`` counts its runs);
- ``skip``: it is marked ``skipped`` and the chain goes on with the next one;
- ``cancel``: the chain ends and the task is ``cancelled``.

No answer (past ``agent.wait_for_user_s``, or the budget spent) ends the chain as ``stop`` would.
The task succeeds when every subgoal succeeded or was skipped; its message says how many of each,
and the last one's result. An attempt the infrastructure re-queued runs the chain again from its
first subgoal (its phone was reset).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.db import utcnow
from worker.agent import prompts
from worker.agent.errors import NoAnswer
from worker.agent.results import AgentResult, FailReason, RunStatus
from worker.agent.steering import AgentState, AgentSteering
from worker.run.hooks import CLAIM_LOST, TaskHooks
from worker.run.rows import TaskRows
from worker.run.tries import Tries, TryRecord

__all__ = ["CHOICES", "Chain", "run_chain"]

logger = logging.getLogger(__name__)

# What a person may answer when a subgoal failed and the task asks (on_step_failure: ask).
RETRY, SKIP, CANCEL = "retry", "skip", "cancel"
CHOICES = (RETRY, SKIP, CANCEL)
# Failures that are not the agent's: they end the chain without asking (the attempt may be retried).
_NOT_ASKED = frozenset({FailReason.MODEL_UNAVAILABLE, FailReason.DEVICE_ERROR})


@dataclass
class Chain:
    """A chain's end, as ``Tries`` is a single run's: the task's result over all its subgoals."""

    result: AgentResult
    parts: list[dict[str, Any]]
    records: list[TryRecord] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The task result's fields: ``chain`` (how many subgoals ended how)."""
        counts: dict[str, int] = {}
        for part in self.parts:
            counts[part["status"]] = counts.get(part["status"], 0) + 1
        return {"chain": {"subgoals": len(self.parts), **counts}}


def _ended(part: dict[str, Any], tries: Tries, steps: list[int]) -> None:
    result = tries.result
    part.update(
        status=str(result.status), reason=str(result.reason) if result.reason else None, message=result.message,
        steps=len(steps), first_step=steps[0] if steps else None, last_step=steps[-1] if steps else None,
        tries=[record.to_json() for record in tries.records] if len(tries.records) > 1 else None,
        finished_at=utcnow().isoformat(),
    )  # fmt: skip


async def run_chain(
    run_subgoal: Callable[[str, str], Awaitable[Tries]],
    *,
    instruction: str,
    goals: tuple[str, ...],
    on_step_failure: str,
    rows: TaskRows,
    hooks: TaskHooks,
    steering: AgentSteering,
    lang: str,
    budget_left: Callable[[], float],
) -> Chain:
    """Run ``run_subgoal(goal, context)`` for each subgoal in turn (the module docstring's rules)."""
    parts: list[dict[str, Any]] = [
        {"index": i, "goal": goal, "status": "pending"} for i, goal in enumerate(goals)
    ]
    steps_of: list[list[int]] = [[] for _ in goals]
    records: list[TryRecord] = []
    results: list[AgentResult] = []
    total = len(goals)

    async def write(index: int) -> bool:
        if await rows.set_subgoals(parts, dict(parts[index])):
            return True
        steering.cancel(CLAIM_LOST)  # someone else holds the task now
        return False

    index, stopped = 0, None
    while index < total:
        part = parts[index]
        part.update(status="running", runs=part.get("runs", 0) + 1, started_at=utcnow().isoformat(),
                    reason=None, message=None, finished_at=None)  # fmt: skip
        if not await write(index):
            stopped = AgentResult(RunStatus.CANCELLED, "another worker re-claimed the task", None)
            break
        hooks.subgoal = index
        logger.info("subgoal started", extra={"subgoal": index, "of": total, "run": part["runs"]})
        context = prompts.chain_message(
            lang, instruction, [(p["goal"], p["status"], p.get("message")) for p in parts], index
        )
        tries = await run_subgoal(part["goal"], context)
        result = tries.result
        results.append(result)
        records.extend(tries.records)
        steps_of[index].extend(step for record in tries.records for step in record.steps)
        _ended(part, tries, steps_of[index])
        if not await write(index):
            stopped = result
            break
        logger.info(
            "subgoal ended", extra={"subgoal": index, "status": part["status"], "reason": part["reason"]}
        )
        if result.status == RunStatus.SUCCEEDED:
            index += 1
            continue
        choice = None
        if (on_step_failure == "ask" and result.status == RunStatus.FAILED and result.reason not in _NOT_ASKED
                and not steering.cancelled and budget_left() > 0):  # fmt: skip
            choice = await _ask(hooks, part, total)
        if choice == RETRY:
            continue
        if choice == SKIP:
            part["status"] = "skipped"
            await write(index)
            index += 1
            continue
        name = f'subgoal {index + 1} of {total} ("{part["goal"]}")'
        if choice == CANCEL:
            stopped = AgentResult(
                RunStatus.CANCELLED, f"cancelled by the person after {name} failed: {result.message}"
            )
        else:
            stopped = AgentResult(
                result.status, f"{name} {_verb(result.status)}: {result.message}", result.reason
            )
        break
    hooks.subgoal = None
    steps = [step for result in results for step in result.steps]
    elapsed_s = sum(result.elapsed_s for result in results)
    if stopped is None:
        done = sum(part["status"] == "succeeded" for part in parts)
        skipped = total - done
        counted = f"{done} of {total} subgoals succeeded" + (f", {skipped} skipped" if skipped else "")
        last = results[-1].message if results else ""
        final = AgentResult(RunStatus.SUCCEEDED, f"{counted}: {last}", None, steps=steps, elapsed_s=elapsed_s)
    else:
        final = AgentResult(stopped.status, stopped.message, stopped.reason, steps=steps, elapsed_s=elapsed_s)
    return Chain(final, parts, records)


def _verb(status: RunStatus) -> str:
    return {RunStatus.TIMED_OUT: "timed out", RunStatus.CANCELLED: "was cancelled"}.get(status, "failed")


async def _ask(hooks: TaskHooks, part: dict[str, Any], total: int) -> str | None:
    """Ask the person what to do about a failed subgoal: one of ``CHOICES``, or None (no answer)."""
    question = (f'Subgoal {part["index"] + 1} of {total} failed: "{part["goal"]}" ({part["reason"]}: '
                f'{part["message"]}). Reply retry (run it again from the current screen), skip (go on with '
                "the next one) or cancel (end the task).")  # fmt: skip
    try:
        choice = await hooks.ask_choice(question, CHOICES, subgoal=part["index"])
    except NoAnswer as exc:
        logger.info("nobody said what to do about the failed subgoal", extra={"error": str(exc)})
        choice = None
    if choice is not None:
        await hooks.on_state(AgentState.RUNNING)
    logger.info("the person answered about the failed subgoal", extra={"choice": choice})
    return choice
