"""The reference model's side of each model family: reading a request, writing a reply.

The policy is shared (``policy.decide`` on the screen and the task); only this module knows how a
family's request carries the task, the app in front, the screenshot and the earlier steps, and it
writes the reply with that family's own writer (``worker.agent.families``), so every family's
adapter in the agent is tested against a server that speaks it (``phonefleet reference-model
--family F``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from worker.agent.errors import ActionError
from worker.agent.families import Family, family
from worker.agent.families.coords import ImageSize
from worker.agent.families.planner import read_plan
from worker.agent.families.ui_tars import INSTRUCTION_HEADER
from worker.agent.grammar import ActionModel
from worker.agent.parser import parse_reply
from worker.reference_model.chat import ChatRequest, ChatView, read_chat
from worker.reference_model.replies import clean_thinking

__all__ = ["Dialect", "dialect"]

_STEP = re.compile(r"Step \d+: ")
_TASK = re.compile(r"^Task: (?P<task>.*?)\nSteps done so far", re.DOTALL)
# What must not appear in a reply's reasoning, per family, lest a client read it as the action.
_QWEN = ("qwen-mobile-use", "qwen3-mobile-use")
_MARKERS = {"ui-tars": ("Action:", "Action："), **dict.fromkeys(_QWEN, ("<tool_call>", "</tool_call>"))}


@dataclass(frozen=True)
class Dialect:
    """One family as the reference model reads and writes it."""

    family: Family
    planner: bool = False  # a planner's replies: the loop's grammar with targets in words (families/planner.py)

    def read(self, request: ChatRequest) -> ChatView:
        """The task, the app in front, the newest image and the earlier replies of a request."""
        view = read_chat(request)
        if self.family.name == "ui-tars":
            users = [m for m in request.messages if m.role == "user"]
            first = users[0].text if users else ""
            at = first.rfind(INSTRUCTION_HEADER)
            task = first[at + len(INSTRUCTION_HEADER) :].strip() if at >= 0 else view.task
            return ChatView(task, view.current_app, view.image_url, view.assistant_turns)
        if self.family.name in _QWEN:
            users = [m for m in request.messages if m.role == "user"]
            text = users[-1].text if users else ""
            found = _TASK.match(text)
            task = found.group("task").strip() if found else view.task
            return ChatView(task, view.current_app, view.image_url, tuple(_steps(text)))
        return view

    def earlier_actions(
        self,
        turns: tuple[str, ...],
        size: ImageSize,
        locate: Callable[[str], tuple[int, int] | None] | None = None,
    ) -> list[tuple[ActionModel | None, str]]:
        """Each earlier reply's action (None when unreadable) and its text; a planner's targets found
        again by ``locate`` (on the screen now), a stand-in point where it finds none."""
        out: list[tuple[ActionModel | None, str]] = []
        for text in turns:
            reply = f"<tool_call>{text}</tool_call>" if self.family.name in _QWEN else text
            try:
                if self.planner:
                    plan = read_plan(text)
                    found = {k: locate(t) for k, t in plan.targets.items()} if locate is not None else {}
                    points = {k: p for k, p in found.items() if p is not None}
                    out.append((plan.action.model_copy(update=points), text))
                    continue
                action = (
                    self.family.parse(reply, size).action
                    if self.family.name != "autoglm"
                    else parse_reply(text).action
                )
            except ActionError:
                action = None
            out.append((action, text))
        return out

    def write(self, thinking: str, action: ActionModel, size: ImageSize) -> str:
        """The reply as this family's model writes it, the reasoning unable to pass for an action."""
        thinking = clean_thinking(thinking)
        for marker in _MARKERS.get(self.family.name, ()):
            thinking = thinking.replace(marker, marker.replace(":", " -").replace("<", "‹").replace(">", "›"))
        return self.family.write_reply(thinking, action, size)


def _steps(text: str) -> list[str]:
    """The calls in a qwen request's "steps done so far", as JSON texts."""
    decoder = json.JSONDecoder()
    out = []
    for found in _STEP.finditer(text):
        try:
            obj, end = decoder.raw_decode(text, found.end())
        except ValueError:
            continue
        out.append(text[found.end() : end] if isinstance(obj, dict) else "")
    return out


def dialect(name: str, *, planner: bool = False) -> Dialect:
    """The dialect of the family ``name`` (a planner's: ``planner``); ValueError for an unknown family."""
    return Dialect(family(name), planner)
