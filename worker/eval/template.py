"""A task template: an instruction with parameters, judged from the phone's state.

A ``Template`` has a name, an instruction with ``{parameters}``, a complexity and a category, the
apps it touches, and its parts: ``generate_params(rng)`` (the same seed gives the same task),
``initialize(phone, params)`` (the start state), ``is_successful(phone, params)`` (a score in
[0, 1] read from the phone through Android's interfaces, ``phone.py``), ``tear_down(phone, params)``,
and a scripted solution (the actions that do it, for ``--model scripted``). The suite's scripted
person (``person.py``) answers what a template's task makes the agent ask: a confirmation, a
takeover (``takeover``), a question (``answer``). An infeasible template's right answer is to stop
and ask; it scores 1 when the agent asked and nothing on the phone changed.

Templates are plain values: the built-in suite (``builtin_*.py``) builds most of them from small
functions and tables.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from worker.eval.phone import EvalPhone

__all__ = [
    "CANCEL",
    "Category",
    "Params",
    "Template",
    "act",
    "stable_choice",
]

Params = Mapping[str, str]
# What the scripted person answers to a question it will not answer: it cancels the task.
CANCEL = "<cancel>"


class Category(StrEnum):
    """The suite's grades (docs/evals.md)."""

    ONE_STEP = "one_step"  # one app, one step
    MULTI_STEP = "multi_step"  # one app, several steps
    TWO_APPS = "two_apps"  # read in one app, write in another
    POPUP = "popup"  # through the Shop's advert pop-up
    CONFIRMATION = "confirmation"  # a sensitive step a person confirms (Pay)
    PERSON = "person"  # a person does a part (the Bank login)
    INFEASIBLE = "infeasible"  # the right answer is to stop and ask


COMPLEXITY = {Category.ONE_STEP: 1, Category.MULTI_STEP: 2, Category.TWO_APPS: 3, Category.POPUP: 3,
              Category.CONFIRMATION: 4, Category.PERSON: 4, Category.INFEASIBLE: 2}  # fmt: skip


def stable_choice(key: str, options: list[str]) -> str:
    """One of ``options`` chosen by ``key`` alone, the same in every process (a derived parameter)."""
    return options[zlib.crc32(key.encode()) % len(options)]


async def _nothing(phone: EvalPhone, params: Params) -> None:
    return None


@dataclass(frozen=True)
class Template:
    name: str
    instruction: str  # "Send {message} to {name}"
    category: Category
    apps: tuple[str, ...]  # packages it touches
    generate: Callable[[random.Random], dict[str, str]]
    setup: Callable[[EvalPhone, Params], Awaitable[None]]
    check: Callable[[EvalPhone, Params], Awaitable[float]]
    solve: Callable[[Params], list[str]]
    cleanup: Callable[[EvalPhone, Params], Awaitable[None]] = _nothing
    # The scripted person: its answer to a question (CANCEL: it cancels the task), and what it does
    # on the phone when the agent hands it over (returns its note).
    answer: Callable[[str, Params], str] = lambda question, params: CANCEL
    takeover: Callable[[EvalPhone, Params], Awaitable[str]] | None = None
    # The parameters the instruction does not show (a contact's number, a message's text), made from
    # those it does: so the instruction alone gives the whole task (what --model scripted reads).
    derive: Callable[[Params], dict[str, str]] = lambda params: {}
    complexity: int = 0  # 0: the category's (COMPLEXITY)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.complexity:
            object.__setattr__(self, "complexity", COMPLEXITY[self.category])
        object.__setattr__(self, "pattern", _pattern(self.instruction))

    @property
    def infeasible(self) -> bool:
        return self.category == Category.INFEASIBLE

    # ---- the four parts
    def generate_params(self, rng: random.Random) -> dict[str, str]:
        shown = self.generate(rng)
        return {**shown, **self.derive(shown)}

    def text(self, params: Params) -> str:
        """The instruction with its parameters filled in."""
        return self.instruction.format(**params)

    async def initialize(self, phone: EvalPhone, params: Params) -> None:
        """The start state: the template's apps cleared and stopped, its data seeded, the launcher in front."""
        await phone.clear(*self.apps)
        await self.setup(phone, params)
        await phone.home()

    async def is_successful(self, phone: EvalPhone, params: Params) -> float:
        score = float(await self.check(phone, params))
        return min(1.0, max(0.0, score))

    async def tear_down(self, phone: EvalPhone, params: Params) -> None:
        await self.cleanup(phone, params)

    def solution(self, params: Params) -> list[str]:
        """The scripted solution: the actions, in the agent's grammar, one per step."""
        return self.solve(params)

    def match(self, instruction: str) -> dict[str, str] | None:
        """The parameters when ``instruction`` is this template's text, else None."""
        m = self.pattern.fullmatch(instruction.strip())
        if m is None:
            return None
        shown = m.groupdict()
        return {**shown, **self.derive(shown)}


def _pattern(instruction: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", instruction)
    out = []
    for i, part in enumerate(parts):
        out.append(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)")
    return re.compile("".join(out), re.DOTALL)


class act:
    """The scripted solutions' actions, written as the model writes them (worker/agent/actions.py)."""

    @staticmethod
    def _s(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    @staticmethod
    def launch(app: str) -> str:
        return f'do(action="Launch", app="{act._s(app)}")'

    @staticmethod
    def tap(point: tuple[int, int], message: str | None = None) -> str:
        extra = f', message="{act._s(message)}"' if message else ""
        return f'do(action="Tap", element=[{point[0]}, {point[1]}]{extra})'

    @staticmethod
    def type(text: str) -> str:
        return f'do(action="Type", text="{act._s(text)}")'

    @staticmethod
    def back() -> str:
        return 'do(action="Back")'

    @staticmethod
    def home() -> str:
        return 'do(action="Home")'

    @staticmethod
    def ask(question: str) -> str:
        return f'do(action="Interact", message="{act._s(question)}")'

    @staticmethod
    def take_over(message: str) -> str:
        return f'do(action="Take_over", message="{act._s(message)}")'

    @staticmethod
    def finish(message: str) -> str:
        return f'finish(message="{act._s(message)}")'
