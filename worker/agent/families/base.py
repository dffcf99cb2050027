"""What every model family is: the loop's state in, that family's request out; its reply in, typed actions out.

A family (``autoglm``, ``ui-tars``, ``qwen-mobile-use`` and ``qwen3-mobile-use``: one module each, the Qwen two sharing one) knows how its models were
taught to talk: where the instructions go (system turn, first user turn, a tool schema), where the
screenshot goes, how history is carried, how a reply is written and which convention its points use
(``coords.py`` converts). The loop only calls the methods below, so it runs any family unchanged.

Actions stay declared once (``worker/agent/actions.py``). A family maps the actions it has its own
words for (``click`` → ``Tap``); every other action of ``ACTIONS`` it offers and reads by the generic
rule here (its name in snake case, its arguments by their names, its points as the family writes
points), so an action added to ``actions.py`` reaches every family with no change to them.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from PIL import Image

from worker.agent import prompts
from worker.agent.actions import ACTIONS, FINISH, Point
from worker.agent.conversation import Conversation
from worker.agent.families.coords import MIN_PIXELS, Convention, ImageSize, smart_resize
from worker.agent.grammar import ActionModel
from worker.agent.parser import ParsedReply

__all__ = ["PLACEHOLDERS", "Family", "fill_prompt", "generic_actions", "point_fields", "snake"]

PLACEHOLDERS = ("date", "actions", "lang", "screen_width", "screen_height")
"""What a prompt (built-in or an endpoint's ``prompt_file``) may hold in braces; docs/models.md."""
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def fill_prompt(template: str, values: dict[str, str]) -> str:
    """``template`` with each known ``{placeholder}`` replaced; any other brace (JSON, say) stays."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def snake(name: str) -> str:
    """An action's grammar name as a function name: "Long Press" → "long_press", "Call_API" → "call_api"."""
    return re.sub(r"[\s-]+", "_", name.strip()).lower()


def point_fields(cls: type[ActionModel]) -> list[str]:
    """The arguments of an action that are points on the grid, in declaration order."""
    return [key for key, info in cls.model_fields.items() if info.annotation == Point]


def generic_actions(native: set[str]) -> list[type[ActionModel]]:
    """The actions a family has no words of its own for (``native``: grammar names it maps itself)."""
    return [cls for name, cls in ACTIONS.items() if name not in native and name != FINISH]


def action_class(written: str) -> type[ActionModel] | None:
    """The action a snake-case (or any-case) name stands for, by the generic rule."""
    key = re.sub(r"[\s_-]", "", written).lower()
    for name, cls in ACTIONS.items():
        if re.sub(r"[\s_-]", "", name).lower() == key:
            return cls
    return None


class Family(ABC):
    """One reply grammar; stateless, one instance shared by every run (``families.FAMILIES``)."""

    name: ClassVar[str]
    convention: ClassVar[Convention]
    resizes: ClassVar[bool] = False
    """Whether the client resizes the screenshot as the server's processor would (pixel families)."""
    min_pixels: ClassVar[int] = MIN_PIXELS  # the smallest area that resize allows

    def prepare_image(self, image: Image.Image, max_pixels: int) -> Image.Image:
        """The screenshot as it is sent (before encoding): smart-resized for pixel families."""
        if not self.resizes:
            return image
        size = smart_resize(*image.size, max_pixels, min_pixels=self.min_pixels)
        return image if size == image.size else image.resize(size, Image.Resampling.BILINEAR)

    @abstractmethod
    def builtin_prompt(self, lang: str) -> str:
        """The built-in instructions, with placeholders (``PLACEHOLDERS``) still in."""

    @abstractmethod
    def action_list(self, lang: str, size: ImageSize) -> str:
        """The actions as this family's prompt lists them (``{actions}``)."""

    def prompt(self, lang: str, today: dt.date, size: ImageSize, template: str | None = None) -> str:
        """The instructions the model gets: ``template`` (an endpoint's prompt file) or the built-in one."""
        values = {
            "date": prompts.format_date(lang, today), "actions": self.action_list(lang, size), "lang": lang,
            "screen_width": str(size[0]), "screen_height": str(size[1]),
        }  # fmt: skip
        return fill_prompt(self.builtin_prompt(lang) if template is None else template, values)

    def first_user_text(self, task: str, info: str, earlier_tries: str | None) -> str:
        """The text of the first user turn (the loop may put notes before it)."""
        return prompts.first_user_message(task, info, earlier_tries)

    def step_user_text(self, info: str) -> str:
        """The text of a later user turn."""
        return prompts.step_user_message(info)

    @abstractmethod
    def messages(self, conversation: Conversation, task: str, image: dict[str, Any]) -> list[dict[str, Any]]:
        """The chat messages of one request: ``conversation`` (its ``system`` is ``prompt``'s text, its
        last user turn open) and the newest screenshot's ``image`` part."""

    @abstractmethod
    def parse(self, text: str, size: ImageSize) -> ParsedReply:
        """A reply as one typed action with grid points; ``ActionParseError``, ``UnknownAction`` or
        ``ActionRejected`` when it holds none that can run (never a silent finish)."""

    @abstractmethod
    def write_reply(self, thinking: str, action: ActionModel, size: ImageSize) -> str:
        """A reply as this family's model writes it (the reference model answers with it)."""

    def assistant_turn(self, parsed: ParsedReply, size: ImageSize) -> str:
        """How a parsed reply is kept in the history the next request carries."""
        return self.write_reply(parsed.thinking, parsed.action, size)
