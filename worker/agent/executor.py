"""Carrying out one parsed action on the phone: what every action's ``execute`` is given.

Each action says how it is done (``worker/agent/actions.py``); the executor holds what they share:
the phone, grid-to-pixel conversion, the gesture timings, and the hooks for the human parts
(confirmation of a sensitive tap, a takeover, a question), which the steering can cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from device_pool.driver import SECRET_INPUT, TextInputUnsupported
from device_pool.driver.ui_tree import element_at
from device_pool.errors import DeviceError, PhoneFleetError
from device_pool.grid import to_pixels
from worker.agent import actions as a
from worker.agent import prompts
from worker.agent.errors import ActionRejected
from worker.agent.results import FailReason, Outcome
from worker.agent.steering import AgentHooks, AgentState, AgentSteering

__all__ = ["ActionExecutor", "Device", "Outcome", "to_pixels"]

logger = logging.getLogger(__name__)


class Device(Protocol):
    """The phone as the agent needs it (``device_pool.driver.AdbDevice`` is one)."""

    async def tap(self, x: float, y: float) -> None: ...
    async def double_tap(self, x: float, y: float) -> None: ...
    async def long_press(self, x: float, y: float, duration_ms: int = ...) -> None: ...
    async def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int = ...) -> None: ...
    async def key(self, key: str | int) -> None: ...
    async def type_text(self, text: str) -> None: ...
    async def launch(self, app: str) -> str: ...
    async def ui_dump(self) -> str: ...


class ActionExecutor:
    def __init__(
        self,
        device: Device,
        screen_size: tuple[int, int],
        hooks: AgentHooks,
        steering: AgentSteering,
        *,
        wait_cap_s: float = 10.0,
        swipe_ms: int = 400,
        long_press_ms: int = 800,
        lang: str = "en",
    ) -> None:
        self.device = device
        self.lang = lang  # of what the model is told (prompts)
        self.size = screen_size
        self.hooks = hooks
        self.steering = steering
        self.wait_cap_s = wait_cap_s
        self.swipe_ms = swipe_ms
        self.long_press_ms = long_press_ms
        # Whether the focused field is a password, as the step's capture read the view tree (the
        # loop sets it before each action): text typed into it is masked in the step and the logs.
        self.focused_password = False
        # Called as a person is asked (just before the state changes and the wait begins) with
        # what is asked: the loop records the asking step then, so it shows while the task waits.
        self.on_asking: Callable[[str], Awaitable[None]] | None = None

    async def _asking(self, message: str) -> None:
        if self.on_asking is not None:
            await self.on_asking(message)

    async def execute(self, action: a.ActionModel) -> Outcome:
        """Run ``action``; ActionRejected when it cannot work on this phone (fed back to the model)."""
        return await action.execute(self)

    def px(self, point: tuple[int, int]) -> tuple[int, int]:
        """A grid point as a pixel of this phone's screen."""
        return to_pixels(point, self.size)

    async def wait(self, seconds: float) -> None:
        """Wait ``seconds`` (at most ``wait_cap_s``); cut short by cancel or pause, like a model call."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self.steering.wait_interrupt(), timeout=max(0.0, min(seconds, self.wait_cap_s))
            )

    async def type_secret(self, name: str) -> None:
        """Type the value of the secret ``name`` (the hooks' ``secret_value``: the vault) into the
        focused field. The value goes to the driver and nowhere else: an unknown name is rejected
        with the names there are, and a failure is reported without the command (which holds it)."""
        try:
            value = await self.hooks.secret_value(name)
        except PhoneFleetError as exc:  # the vault cannot read it (its key): the model hears so
            logger.warning("the secret could not be read", extra={"secret_name": name, "error": exc.message})
            raise ActionRejected(
                f"the secret {name!r} cannot be read ({exc.code})",
                agent_feedback=f'The secret "{name}" cannot be read now; ask the user to enter it (Take_over).',
            ) from None
        if value is None:
            names = await self.hooks.secret_names()
            known = ", ".join(f'"{n}"' for n in names) if names else "none"
            raise ActionRejected(
                f"no secret named {name!r}",
                agent_feedback=f'There is no secret named "{name}". The secrets you can type: {known}.',
            )
        await self._type_unseen(value, f"the secret {name!r}")

    async def type_text(self, text: str) -> None:
        """Type ``text`` the model wrote; into a password field (``focused_password``, read from the
        view tree at capture) it is kept out of the logs and errors as a secret's value is."""
        if self.focused_password:
            await self._type_unseen(text, "text into a password field")
        else:
            await self.device.type_text(text)

    async def _type_unseen(self, text: str, what: str) -> None:
        """Type ``text`` with the driver's command log masked; a failure is reported without the
        command line or its output (which hold the text), and without the original as its cause."""
        token = SECRET_INPUT.set(True)
        try:
            await self.device.type_text(text)
        except TextInputUnsupported:
            raise ActionRejected(
                f"the phone cannot type {what} (its keyboard)",
                agent_feedback="The phone's keyboard cannot type that; ask the user to enter it.",
            ) from None
        except DeviceError as exc:
            raise DeviceError(f"typing {what} failed ({type(exc).__name__})", device_id=exc.device_id) from None
        finally:
            SECRET_INPUT.reset(token)

    async def sensitive_tap(self, action: a.Tap, message: str) -> Outcome:
        """Tap once a person approved ``message``; a denial stops the run."""
        label = await self.label_at(action.element)
        await self._asking(message)
        await self.hooks.on_state(AgentState.AWAITING_CONFIRMATION, message)
        approved = await self.hooks.request_confirmation(action, message, element_label=label)
        await self.hooks.on_state(AgentState.RUNNING)
        if not approved:
            return Outcome(stop=FailReason.DENIED, message=f"The user denied: {message}")
        await self.device.tap(*self.px(action.element))
        return Outcome(note="The user approved the action.")

    async def label_at(self, point: tuple[int, int]) -> str | None:
        """The label of the element at grid ``point`` from the view tree, so a person asked to
        approve a tap reads what it hits ("Pay $12.99"), not a grid point; None when unknown."""
        try:
            found = element_at(await self.device.ui_dump(), *self.px(point))
        except Exception:  # a phone without a readable tree: the person still sees the point
            logger.warning("could not read the view tree for the tapped element", exc_info=True)
            return None
        return found.label if found is not None and not found.password else None

    async def takeover(self, message: str) -> Outcome:
        """Hand the phone to a person; nobody to take over stops the run."""
        await self._asking(message)
        await self.hooks.on_state(AgentState.WAITING_FOR_USER, message)
        note = await self.hooks.request_takeover(message)
        await self.hooks.on_state(AgentState.RUNNING)
        if note is None:
            return Outcome(stop=FailReason.NEEDS_USER, message=f"Needs a person: {message}")
        told = f"The user took over and has handed back. Their note: {note or '(none)'}"
        return Outcome(note=await self.what_the_user_did(told))

    async def what_the_user_did(self, told: str) -> str:
        """``told`` (the hand-back and its note) and, when recorded, the person's own actions."""
        steps = await self.hooks.user_steps()
        return told if steps is None else f"{told}\n{prompts.user_steps_message(self.lang, steps)}"

    async def ask(self, question: str) -> Outcome:
        """Ask the user ``question``; without an answer the model is told to choose itself."""
        await self._asking(question)
        await self.hooks.on_state(AgentState.ASKING_USER, question)
        answer = await self.hooks.ask_user(question)
        await self.hooks.on_state(AgentState.RUNNING)
        if answer is None and self.steering.paused:
            # A person took the phone instead of answering: the hand-back tells the model what they did.
            return Outcome(note="The user took control instead of answering.")
        if answer is None:
            return Outcome(note="Nobody answered the question; make the most reasonable choice yourself.")
        return Outcome(note=f"The user answered: {answer}")
