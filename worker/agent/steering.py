"""How the outside world steers a running agent: hooks it awaits, and an ``AgentSteering`` it obeys.

Nothing here blocks a thread: confirmation, takeover and questions are awaited coroutines that
resolve when a person (dashboard, API, terminal) answers, and cancel/pause are events the loop
checks between steps and races against a model call in flight.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt

    from worker.agent.actions import Action
    from worker.agent.results import StepRecord


class AgentState(enum.StrEnum):
    """What the agent is doing; the orchestrator maps these onto task states."""

    RUNNING = "running"
    WAITING_FOR_USER = "waiting_for_user"  # the agent asked a person to take over (login, captcha)
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # a sensitive action waits for approval
    ASKING_USER = "asking_user"  # Interact: a question for the user
    USER_CONTROL = "user_control"  # a person took over on their own initiative (paused)


class AgentHooks:
    """Override what you need; the defaults suit an unattended run (no person to ask).

    Unattended, a sensitive action is denied, a takeover cannot be served (the run ends with
    ``needs_user``) and a question gets no answer.
    """

    async def on_step(self, step: StepRecord) -> None:
        """Called after every step, with its record (screenshot included)."""

    async def on_state(self, state: AgentState, detail: str = "") -> None:
        """Called on every state change."""

    async def on_model_unavailable(self, failure: str | None, until: dt.datetime | None = None) -> None:
        """Called when the model server failed and the run waits for it (``failure`` says how;
        ``until``: when the run's outage budget runs out, None without one), and with None once a
        reply came after such failures."""

    async def request_confirmation(self, action: Action, message: str, element_label: str | None = None) -> bool:
        """Approve (True) or deny (False) a sensitive action such as a payment; ``element_label``:
        the label of the element the tap hits, from the view tree (None when unknown)."""
        return False

    async def request_takeover(self, message: str) -> str | None:
        """A person does what the agent cannot (log in, solve a captcha); return their note.

        Return None when nobody can take over: the run then ends as ``needs_user``.
        """
        return None

    async def ask_user(self, question: str) -> str | None:
        """Answer an Interact question, or None when nobody can."""
        return None

    async def secret_names(self) -> list[str]:
        """The names of the secrets the agent may type (``Type_Secret``), told to the model; the
        run's port to the vault (the worker's reads the task's tenant's). None here."""
        return []

    async def secret_value(self, name: str) -> str | None:
        """The value of the secret ``name``, just before the driver types it; None when there is
        no such secret. Never recorded, logged or told to the model."""
        return None

    async def user_steps(self) -> list[str] | None:
        """After a hand-back: what the person did on the phone during the takeover, one line per
        action (oldest first), for the model's next turn; None when nobody records it."""
        return None


class AgentSteering:
    """Cancel, pause and resume a running agent from another task (or thread, via the loop)."""

    def __init__(self) -> None:
        self._cancelled = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._interrupt = asyncio.Event()
        self.cancel_reason = ""
        self.resume_note: str | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        self.cancel_reason = reason
        self._cancelled.set()
        self._interrupt.set()

    def pause(self) -> None:
        """Stop after the current action; a model call in flight is abandoned and redone on resume."""
        self._running.clear()
        self._interrupt.set()

    def resume(self, note: str | None = None) -> None:
        """Carry on; ``note`` (what the person did or wants) goes into the next model turn."""
        self.resume_note = note
        self._interrupt.clear()
        self._running.set()

    async def wait_running(self) -> None:
        """Return when not paused (or when cancelled)."""
        if self._running.is_set() or self.cancelled:
            return
        waiters = [asyncio.ensure_future(self._running.wait()), asyncio.ensure_future(self._cancelled.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def wait_interrupt(self) -> None:
        """Return when a cancel or pause arrives (used to race a model call or a Wait)."""
        await self._interrupt.wait()

    def take_resume_note(self) -> str | None:
        note, self.resume_note = self.resume_note, None
        return note
