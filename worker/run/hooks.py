"""The agent's hooks and watcher for a task run by a worker: everything goes through the database.

- ``on_step``: a ``steps`` row at the task's next index, its screenshot as
  ``{data_dir}/tasks/<task_id>/step-NNN.jpg`` (NNN = that 0-based index) and a ``task.step`` event,
  in one transaction (``orchestrator/db/steps.py``: a person's steps during a takeover are numbered
  in the same sequence). The rows and files are the trajectory. A step that asks a person is
  recorded when it asks (result ``waiting``, its note what was asked), and again once answered
  (the same row rewritten with its result and the answer, another ``task.step`` event).
- ``on_state``: the task status (running, waiting_for_user, awaiting_confirmation, user_control)
  and its ``task.status`` event, with the task's ``waiting`` object: ``takeover``, ``question`` or
  ``confirmation`` carrying the agent's message while it waits on a person, null otherwise. A wait
  for a person is written together with its request event (below), in one transaction: a reply
  sent the instant the status shows finds the request, never a 409.
- ``on_model_unavailable``: ``waiting`` = ``model_unavailable`` while the run waits for a failing
  model server (the failure, since when, and until when the outage budget lasts), null once a reply
  came (a ``task.waiting`` event each time).
- People answer through events (the contract the confirm/takeover/reply API endpoints write):

  | the agent asks | it writes | it waits for an event, after its own | payload read |
  | --- | --- | --- | --- |
  | confirmation of a sensitive action | ``task.confirmation_requested`` {message, action, element_label} | ``task.confirmation`` | ``approved`` (bool) |
  | a takeover (login, captcha) | ``task.takeover_requested`` {message} | ``task.handback`` | ``note`` (str, optional) |
  | an answer (Interact) | ``task.question`` {question} | ``task.reply`` | ``answer`` (str) |

  polled every ``poll_s`` for at most ``wait_for_user_s`` (``agent.wait_for_user_s``): past it
  ``NoAnswer`` is raised and the run ends failed/``no_answer`` (its phone goes back to the pool).
  The task's budget running out first, or a cancel, ends the wait with None (denied / nobody took
  over / no answer); a person taking the phone during a question or a confirmation ends it with
  None too (the agent goes on once they hand back).
- ``Watcher``: every ``interval_s`` reads the task row (status, holder, ``result``) — a
  ``result.cancel_requested_at`` cancels the run (within a second of the API call), a row that
  another worker re-claimed cancels it too; every ``task_heartbeat_s`` stamps the task's
  ``heartbeat_at`` (the worker's liveness) and every ``heartbeat_s`` heartbeats the lease — a lost
  lease cancels the run (reason ``lease_lost``). A stamp refused (the task re-claimed, or stale) or
  none written for ``lost_s`` less one beat (a database out of reach) cancels it ``claim_lost``:
  the run stops before anyone may take its task for lost and end its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device_pool.pool import LeaseGrant, LeaseStore
from orchestrator.db import CANCEL_REQUESTED, Step, TaskStatus, WaitingKind, utcnow, waiting
from orchestrator.db.steps import AGENT, HAND_BACK
from orchestrator.encryption import Cipher
from orchestrator.errors import DatabaseUnavailable
from worker.agent.actions import Action
from worker.agent.errors import NoAnswer
from worker.agent.results import StepRecord
from worker.agent.steering import AgentHooks, AgentState, AgentSteering
from worker.run.rows import CONFIRMATION_REQUESTED, TAKEOVER_REQUESTED, TaskRows, clock
from worker.run.secrets import TenantSecrets

__all__ = ["CANCELLED_BY_USER", "CLAIM_LOST", "LEASE_LOST", "TaskHooks", "Watcher"]

logger = logging.getLogger(__name__)

CANCELLED_BY_USER = "cancelled by user"
LEASE_LOST = "lease_lost"
CLAIM_LOST = "claim_lost"

_STATUS_OF = {
    AgentState.RUNNING: TaskStatus.RUNNING,
    AgentState.WAITING_FOR_USER: TaskStatus.WAITING_FOR_USER,
    AgentState.ASKING_USER: TaskStatus.WAITING_FOR_USER,  # a question waits on a person too
    AgentState.AWAITING_CONFIRMATION: TaskStatus.AWAITING_CONFIRMATION,
    AgentState.USER_CONTROL: TaskStatus.USER_CONTROL,
}

# What the task waits for while the agent is in these states (any other state: not waiting).
_WAITING_OF = {
    AgentState.WAITING_FOR_USER: WaitingKind.TAKEOVER,
    AgentState.ASKING_USER: WaitingKind.QUESTION,
    AgentState.AWAITING_CONFIRMATION: WaitingKind.CONFIRMATION,
}


class TaskHooks(AgentHooks):
    """Hooks that record to and wait on the database (see the module docstring)."""

    def __init__(
        self,
        rows: TaskRows,
        steering: AgentSteering,
        *,
        data_dir: Path,
        deadline: float,
        cipher: Cipher | None = None,
        poll_s: float = 0.5,
        jpeg_quality: int = 80,
        wait_for_user_s: float = 900.0,
        secrets: TenantSecrets | None = None,
    ) -> None:
        self.rows = rows
        self.secrets = secrets  # the task's tenant's vault (secret_names, secret_value)
        self.steering = steering
        self.data_dir = data_dir
        self.cipher = cipher  # seals screenshots (storage.encryption_key)
        self.deadline = deadline  # time.monotonic() at which the task's budget runs out
        self.poll_s = poll_s
        self.jpeg_quality = jpeg_quality
        self.wait_for_user_s = wait_for_user_s
        # The agent's step number → the index its row got: a step that asked a person is rewritten there.
        self._recorded: dict[int, int] = {}
        # The status and waiting of a person's wait, announced by ``on_state`` and written by ``_ask``.
        self._asking: tuple[TaskStatus, dict[str, Any]] | None = None
        # The chain's subgoal the agent works on (chain.py): its steps are linked to it. None: no chain.
        self.subgoal: int | None = None
        # The run's recording (orchestrator/live/recorder.py): a moment (time.monotonic()) → its
        # offset in the video, written as each step's timings.video_ms. None: not recorded.
        self.video_offset: Callable[[float], int | None] | None = None

    def new_try(self) -> list[int]:
        """A later try of the task begins (its agent numbers steps from 1 again): the indexes the
        ending try's steps got, in order."""
        indexes = sorted(set(self._recorded.values()))
        self._recorded.clear()
        return indexes

    async def on_step(self, step: StepRecord) -> None:
        event = {"action_text": step.action_text, "result": step.result,
                 "current_app": step.current_app, "actor": AGENT}  # fmt: skip
        if self.subgoal is not None:
            event["subgoal"] = self.subgoal
        recorded = self._recorded.get(step.index)
        if recorded is not None:  # recorded when it asked a person: now its end
            values = {"result": step.result, "note": step.note, "timings": self._timings(step)}
            await self.rows.update_step(recorded, values, {"index": recorded, **event})
            logger.info("step updated", extra={"step": recorded, "result": step.result})
            return
        jpeg = None
        if step.screenshot is not None:
            jpeg = await asyncio.to_thread(self._jpeg, step)
        row = {
            "screenshot": None, "current_app": step.current_app,
            "thinking": step.thinking, "action_text": step.action_text, "action": step.action,
            "result": step.result, "note": step.note, "timings": self._timings(step),
            "prompt_tokens": step.prompt_tokens, "completion_tokens": step.completion_tokens,
            "redactions": step.redactions, "replies": step.replies,
            "subgoal": self.subgoal,
        }  # fmt: skip
        # The index is the task's next one (a person's steps during a takeover take indexes too).
        index = await self.rows.add_step(row, event, jpeg=jpeg, data_dir=self.data_dir, cipher=self.cipher)
        self._recorded[step.index] = index
        logger.info("step recorded", extra={"step": index, "result": step.result})

    def _timings(self, step: StepRecord) -> dict[str, Any]:
        """The step's timings, with where its screenshot is in the run's recording (``video_ms``)."""
        timings: dict[str, Any] = step.to_json()["timings"]
        if self.video_offset is not None and step.timings.captured_at:
            at = self.video_offset(step.timings.captured_at)
            if at is not None:
                timings["video_ms"] = at
        return timings

    def _jpeg(self, step: StepRecord) -> bytes:
        assert step.screenshot is not None
        out = io.BytesIO()
        step.screenshot.convert("RGB").save(out, format="JPEG", quality=self.jpeg_quality)
        return out.getvalue()

    async def on_state(self, state: AgentState, detail: str = "") -> None:
        status = _STATUS_OF.get(state)
        kind = _WAITING_OF.get(state)
        if status is not None and kind is not None:
            # Written with the request event that follows (``_ask``), in one transaction.
            self._asking = (status, waiting(kind, detail, utcnow()))
            return
        self._asking = None
        if status is not None and not await self.rows.set_status(status, detail=detail):
            # Someone else holds the task now; stop spending the phone on it.
            self.steering.cancel(CLAIM_LOST)

    async def on_model_unavailable(self, failure: str | None, until: dt.datetime | None = None) -> None:
        current = self.rows.waiting
        if failure is None:
            if current is None or current["kind"] != WaitingKind.MODEL_UNAVAILABLE:
                return
            now_waiting = None
        else:
            retrying = current is not None and current["kind"] == WaitingKind.MODEL_UNAVAILABLE
            # The same outage, still waited for, keeps its start.
            since = dt.datetime.fromisoformat(current["since"]) if retrying else utcnow()
            message = f"the model server has been failing since {clock(since)} ({failure}); retrying"
            if until is not None:
                message += f" until {clock(until)} at the latest, then this attempt ends"
            if retrying and current["message"] == message:
                return
            now_waiting = waiting(WaitingKind.MODEL_UNAVAILABLE, message, since)
        try:
            if not await self.rows.set_waiting(now_waiting):
                self.steering.cancel(CLAIM_LOST)
        except Exception:
            # Advice to people only: a database blip here must not fail the model call it reports on.
            logger.warning("could not record the model server's failure on the task", exc_info=True)

    async def request_confirmation(self, action: Action, message: str, element_label: str | None = None) -> bool:
        payload: dict[str, Any] = {"message": message, "action": action.model_dump(mode="json")}
        if element_label:
            payload["element_label"] = element_label
        answer = await self._ask(CONFIRMATION_REQUESTED, payload, "task.confirmation")
        return bool(answer is not None and answer.get("approved") is True)

    async def request_takeover(self, message: str) -> str | None:
        answer = await self._ask(TAKEOVER_REQUESTED, {"message": message}, "task.handback")
        if answer is None:
            return None
        note = answer.get("note")
        return note if isinstance(note, str) else ""

    async def ask_user(self, question: str) -> str | None:
        answer = await self._ask("task.question", {"question": question}, "task.reply")
        if answer is None:
            return None
        text = answer.get("answer")
        return text if isinstance(text, str) else None

    async def secret_names(self) -> list[str]:
        return [] if self.secrets is None else await self.secrets.names()

    async def secret_value(self, name: str) -> str | None:
        return None if self.secrets is None else await self.secrets.value(name)

    async def ask_choice(self, question: str, choices: tuple[str, ...], **payload: Any) -> str | None:
        """Ask the person to pick one of ``choices`` (the task waits for a person, as for a
        question: ``task.question`` {question, choices, ...payload}; the API takes only one of them
        as the reply); the choice, or None as ``ask_user``. ``NoAnswer`` past ``wait_for_user_s``."""
        await self.on_state(AgentState.ASKING_USER, question)
        answer = await self._ask("task.question", {"question": question, "choices": list(choices), **payload},
                                 "task.reply")  # fmt: skip
        text = None if answer is None else answer.get("answer")
        return text if isinstance(text, str) and text in choices else None

    async def user_steps(self) -> list[str] | None:
        """The person's steps since the agent's last one (recorded by the API's live view), as the
        model is told them; their hand-back is left out (its note reaches the model already)."""
        try:
            steps = await self.rows.user_steps_since_agent()
        except Exception:  # the model then hears only the note: a database blip must not end the run
            logger.warning("could not read the person's steps", exc_info=True)
            return None
        return [_user_step_line(step) for step in steps if (step.action or {}).get("name") != HAND_BACK]

    async def _ask(self, request: str, payload: dict[str, Any], reply: str) -> dict[str, Any] | None:
        """Write the request event, then poll for the reply event; None on the task's deadline, a
        cancel, or a person taking the phone (but for a takeover, whose reply is their hand-back);
        ``NoAnswer`` past ``wait_for_user_s``."""
        asking, self._asking = self._asking, None
        if asking is None:
            after: int | None = await self.rows.add_event(request, payload)
        else:
            after = await self.rows.ask(*asking, request, payload)
        if after is None:  # someone else holds the task now
            self.steering.cancel(CLAIM_LOST)
            return None
        limit = time.monotonic() + self.wait_for_user_s
        while not self.steering.cancelled:
            events = await self.rows.events_after(after, (reply,))
            if events:
                return dict(events[0].payload or {})
            if self.steering.paused and reply != "task.handback":
                return None
            now = time.monotonic()
            if self.deadline - now <= 0:
                logger.info("no answer within the task's budget", extra={"waiting_for": reply})
                return None
            if limit - now <= 0:
                asked = payload.get("message") or payload.get("question") or ""
                waited = f"{self.wait_for_user_s:g} s (agent.wait_for_user_s)"
                raise NoAnswer(f"no answer within {waited}: {asked}")
            pause = min(self.poll_s, self.deadline - now, limit - now)
            if self.steering.paused:
                await asyncio.sleep(pause)  # paused: the interrupt stays set, so poll at the pace
                continue
            with contextlib.suppress(TimeoutError):
                # A cancel ends the wait at once instead of at the next poll.
                await asyncio.wait_for(self.steering.wait_interrupt(), pause)
        return None


def _user_step_line(step: Step) -> str:
    """One person-made step as the model reads it: the action, the app, and the step's note."""
    line = step.action_text or json.dumps(step.action, ensure_ascii=False)
    if step.current_app:
        line += f" in {step.current_app}"
    return f"{line} ({step.note})" if step.note else line


_USER_CONTROL_EVENTS = ("task.takeover", "task.handback")


class Watcher:
    """Heartbeats the task and the lease; turns a cancel request or a lost claim/lease into a cancel,
    and a person's takeover/handback into a pause/resume of the agent."""

    def __init__(
        self,
        rows: TaskRows,
        steering: AgentSteering,
        *,
        interval_s: float = 0.5,
        heartbeat_s: float = 15.0,
        task_heartbeat_s: float | None = None,
        lost_s: float | None = None,
    ) -> None:
        self.rows = rows
        self.steering = steering
        self.interval_s = interval_s
        self.heartbeat_s = heartbeat_s  # the lease's
        self.task_heartbeat_s = heartbeat_s if task_heartbeat_s is None else task_heartbeat_s
        self.lost_s = lost_s  # the claim rule's staleness (pool.worker_lost_s); None: no self-stop
        # When the last stamp that was written had been sent (the claim's is just before this).
        self._stamped_at = time.monotonic()
        self.store: LeaseStore | None = None
        self.grant: LeaseGrant | None = None
        self.lease_ttl_s = 60.0
        self.cancel_requested = False
        self._task: asyncio.Task[None] | None = None
        self._guard_task: asyncio.Task[None] | None = None
        self._seen_event = 0  # user-control events up to this id are handled (or predate the run)

    def watch_lease(self, store: LeaseStore, grant: LeaseGrant, ttl_s: float) -> None:
        """Heartbeat this lease from now on."""
        self.store, self.grant, self.lease_ttl_s = store, grant, ttl_s

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.rows.task_id}")
        if self.lost_s is not None:
            self._guard_task = asyncio.create_task(
                self._guard(self.lost_s), name=f"guard-{self.rows.task_id}"
            )

    async def _follow_user_control(self) -> None:
        """A person's takeover pauses the agent (state user_control); their handback resumes it."""
        events = await self.rows.events_after(self._seen_event, _USER_CONTROL_EVENTS)
        for event in events:
            self._seen_event = event.id
            if event.type == "task.takeover" and not self.steering.paused:
                logger.info("user took over; pausing the agent")
                self.steering.pause()
            elif event.type == "task.handback" and self.steering.paused:
                logger.info("user handed back; resuming the agent")
                self.steering.resume((event.payload or {}).get("note") or None)

    async def stop(self) -> None:
        for task in (self._task, self._guard_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self) -> None:
        last_beat = last_lease_beat = time.monotonic()
        # Takeovers and handbacks written before this run (an earlier attempt's) are history.
        with contextlib.suppress(Exception):
            earlier = await self.rows.events_after(0, _USER_CONTROL_EVENTS)
            self._seen_event = earlier[-1].id if earlier else 0
        while not self.steering.cancelled:
            await asyncio.sleep(self.interval_s)
            try:
                row = await self.rows.read()
                if row is None or row.worker_id != self.rows.worker_id:
                    logger.warning("task re-claimed by another worker; stopping")
                    self.steering.cancel(CLAIM_LOST)
                    return
                if CANCEL_REQUESTED in row.result:
                    self.cancel_requested = True
                    logger.info("cancel requested; stopping the run")
                    self.steering.cancel(CANCELLED_BY_USER)
                    return
                await self._follow_user_control()
                if time.monotonic() - last_beat >= self.task_heartbeat_s:
                    last_beat = time.monotonic()
                    if not await self._beat_task():
                        return
                if time.monotonic() - last_lease_beat >= self.heartbeat_s:
                    last_lease_beat = time.monotonic()
                    await self._beat_lease()
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable as exc:  # a database restart: one line a tick, no traceback
                logger.warning("watcher tick failed", extra={"error": exc.message})
            except Exception:
                # A database blip must not end the run: the next tick tries again, and a long
                # outage ends in the guard's self-stop (or, without lost_s, a lost lease).
                logger.warning("watcher tick failed", exc_info=True)

    async def _guard(self, lost_s: float) -> None:
        """Stop the run once no stamp was written for ``lost_s`` less one beat: before its task can
        count as lost. A task of its own, so a database call that hangs cannot delay it."""
        while not self.steering.cancelled:
            left = self._stamped_at + lost_s - self.task_heartbeat_s - time.monotonic()
            if left <= 0:
                logger.warning("no heartbeat written in time; stopping before the task counts as lost",
                               extra={"lost_s": lost_s})  # fmt: skip
                self.steering.cancel(CLAIM_LOST)
                return
            await asyncio.sleep(min(left, self.interval_s))

    async def _beat_task(self) -> bool:
        sent = time.monotonic()
        if not await self.rows.heartbeat():
            logger.warning("task heartbeat refused: no longer ours")
            self.steering.cancel(CLAIM_LOST)
            return False
        self._stamped_at = sent
        return True

    async def _beat_lease(self) -> None:
        if self.store is not None and self.grant is not None:
            held = await self.store.heartbeat(self.grant.lease_id, self.grant.holder, self.lease_ttl_s)
            if not held:
                logger.warning("lease lost; stopping the run", extra={"device_id": str(self.grant.device_id)})
                self.steering.cancel(LEASE_LOST)
