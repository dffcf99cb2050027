"""What every action of the grammar is built on: the base model, the table, durations.

An action is one class in ``worker/agent/actions.py``: a subclass of ``ActionModel`` with its
grammar ``name``, its arguments, what the system prompt says about it (``usage``, ``purpose``) and
how it is carried out (``execute``), registered with ``@in_grammar``. The prompt, the parser and
the executor all read ``ACTIONS``, so nothing else lists actions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from worker.agent.errors import ActionRejected

if TYPE_CHECKING:
    from worker.agent.executor import ActionExecutor
    from worker.agent.results import Outcome

__all__ = ["ACTIONS", "ActionModel", "Purpose", "in_grammar", "parse_duration"]


@dataclass(frozen=True)
class Purpose:
    """What an action does, as the system prompt tells the model, in each prompt language."""

    zh: str
    en: str


class ActionModel(BaseModel):
    """Common configuration: immutable, and no argument the grammar does not define."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usage: ClassVar[str]
    """The call as the prompt shows it, placeholders in place of values."""
    purpose: ClassVar[Purpose]
    forms: ClassVar[tuple[tuple[str, Purpose], ...]] = ()
    """More ways to write the action, listed after it in the prompt: (usage, purpose)."""
    grammar_args: ClassVar[dict[str, str]] = {}
    """Grammar arguments held under another field name (the grammar's ``name=`` cannot be the field
    ``name``, which is the action's): grammar argument → field."""
    changes_screen: ClassVar[bool] = True
    """Whether the loop waits for the screen to settle after it."""
    acts_on_phone: ClassVar[bool] = True
    """Whether the agent changes something on the phone with it (a task that did may not be run again
    from the start without the submitter's leave: docs/control-plane.md, "Retries")."""

    async def execute(self, ctx: ActionExecutor) -> Outcome:
        """Carry the action out on ``ctx``'s phone; ActionRejected when it cannot work there."""
        raise ActionRejected(f"no executor for {type(self).__name__}")


ACTIONS: dict[str, type[ActionModel]] = {}
"""Grammar name → model, in the order the prompts list them. ``finish`` is the one non-``do`` call."""


A = TypeVar("A", bound=type[ActionModel])


def in_grammar(cls: A) -> A:
    """Register an action model in ``ACTIONS`` under its grammar name (its ``name`` default)."""
    ACTIONS[cls.model_fields["name"].default] = cls
    return cls


_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>.*?)\s*$")
_UNIT_SECONDS: dict[str, float] = {
    **dict.fromkeys(["", "s", "sec", "secs", "second", "seconds", "秒", "秒钟"], 1.0),
    **dict.fromkeys(["ms", "msec", "millisecond", "milliseconds", "毫秒"], 0.001),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes", "分", "分钟"], 60.0),
}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "2", "2s", "2 seconds", "1.5 秒" or "500 ms"; ValueError if unreadable."""
    match = _DURATION.match(text)
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _UNIT_SECONDS:
        raise ValueError(f'duration {text!r} is not a number of seconds such as "2 seconds"')
    return float(match.group("num")) * _UNIT_SECONDS[unit]
