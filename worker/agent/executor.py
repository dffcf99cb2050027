"""Carrying out one parsed action on the phone: 0–999 grid to pixels, hooks for the human parts."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

from device_pool.driver import UnknownApp
from worker.agent import actions as a
from worker.agent.errors import ActionRejected
from worker.agent.results import FailReason
from worker.agent.steering import AgentHooks, AgentState, AgentSteering

GRID = 1000  # the model's coordinates are 0..999 on both axes, whatever the screen size


class Device(Protocol):
    """The phone as the agent needs it (``device_pool.driver.AdbDevice`` is one)."""

    async def tap(self, x: float, y: float) -> None: ...
    async def double_tap(self, x: float, y: float) -> None: ...
    async def long_press(self, x: float, y: float, duration_ms: int = ...) -> None: ...
    async def swipe(self, x1: float, y1: float, x2: float, y2: float, duration_ms: int = ...) -> None: ...
    async def key(self, key: str | int) -> None: ...
    async def type_text(self, text: str) -> None: ...
    async def launch(self, app: str) -> str: ...


@dataclass
class Outcome:
    """What an action led to: carry on, finish, or stop the run."""

    finished: bool = False
    stop: FailReason | None = None
    message: str = ""
    note: str | None = None  # text for the next model turn (a person's note or answer, feedback)


def to_pixels(point: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    width, height = size
    x = min(width - 1, max(0, round(point[0] / GRID * width)))
    y = min(height - 1, max(0, round(point[1] / GRID * height)))
    return x, y


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
    ) -> None:
        self.device = device
        self.size = screen_size
        self.hooks = hooks
        self.steering = steering
        self.wait_cap_s = wait_cap_s
        self.swipe_ms = swipe_ms
        self.long_press_ms = long_press_ms

    def _px(self, point: tuple[int, int]) -> tuple[int, int]:
        return to_pixels(point, self.size)

    async def execute(self, action: a.Action) -> Outcome:
        """Run ``action``; ActionRejected when it cannot work on this phone (fed back to the model)."""
        match action:
            case a.Finish():
                return Outcome(finished=True, message=action.message)
            case a.Tap() if a.is_sensitive(action):
                return await self._sensitive_tap(action, action.message or "sensitive action")
            case a.Tap():
                await self.device.tap(*self._px(action.element))
            case a.DoubleTap():
                await self.device.double_tap(*self._px(action.element))
            case a.LongPress():
                await self.device.long_press(*self._px(action.element), duration_ms=self.long_press_ms)
            case a.Swipe():
                (x1, y1), (x2, y2) = self._px(action.start), self._px(action.end)
                await self.device.swipe(x1, y1, x2, y2, duration_ms=self.swipe_ms)
            case a.TypeText() | a.TypeName():
                await self.device.type_text(action.text)
            case a.Launch():
                try:
                    await self.device.launch(action.app)
                except UnknownApp as exc:
                    raise ActionRejected(
                        f"unknown app {action.app!r}",
                        agent_feedback=f'The app "{action.app}" is not installed. Find it on the home screen or choose another way.',
                    ) from exc
            case a.Back():
                await self.device.key("back")
            case a.Home():
                await self.device.key("home")
            case a.Wait():
                await self._wait(min(action.seconds, self.wait_cap_s))
            case a.TakeOver():
                return await self._takeover(action.message)
            case a.Interact():
                return await self._ask(action.message or "Please choose how to continue.")
            case a.Note():
                return Outcome(note=None, message=action.message)
            case a.CallApi():
                return Outcome(message=action.instruction)
            case _:
                raise ActionRejected(f"no executor for {type(action).__name__}")
        return Outcome()

    async def _wait(self, seconds: float) -> None:
        # A Wait is cut short by cancel or pause, like a model call.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.steering.wait_interrupt(), timeout=max(0.0, seconds))

    async def _sensitive_tap(self, action: a.Tap, message: str) -> Outcome:
        await self.hooks.on_state(AgentState.AWAITING_CONFIRMATION, message)
        approved = await self.hooks.request_confirmation(action, message)
        await self.hooks.on_state(AgentState.RUNNING)
        if not approved:
            return Outcome(stop=FailReason.DENIED, message=f"The user denied: {message}")
        await self.device.tap(*self._px(action.element))
        return Outcome(note="The user approved the action.")

    async def _takeover(self, message: str) -> Outcome:
        await self.hooks.on_state(AgentState.WAITING_FOR_USER, message)
        note = await self.hooks.request_takeover(message)
        await self.hooks.on_state(AgentState.RUNNING)
        if note is None:
            return Outcome(stop=FailReason.NEEDS_USER, message=f"Needs a person: {message}")
        return Outcome(note=f"The user took over and has handed back. Their note: {note or '(none)'}")

    async def _ask(self, question: str) -> Outcome:
        await self.hooks.on_state(AgentState.ASKING_USER, question)
        answer = await self.hooks.ask_user(question)
        await self.hooks.on_state(AgentState.RUNNING)
        if answer is None:
            return Outcome(note="Nobody answered the question; make the most reasonable choice yourself.")
        return Outcome(note=f"The user answered: {answer}")
