"""AutoGLM (``autoglm``): ``<think>…</think><answer>do(action=…)</answer>``, points on a 0..999 grid.

The grammar the loop was first written for (``prompts.py``, ``parser.py``): the instructions are
the system turn, each user turn is ``[image, text]`` with only the newest screenshot kept, earlier
replies are kept rebuilt as ``<think>…</think><answer>…</answer>``. Source: zai-org/Open-AutoGLM
(``phone_agent/``); docs/models.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from worker.agent import prompts
from worker.agent.conversation import Conversation
from worker.agent.families.base import Family
from worker.agent.families.coords import Convention, ImageSize
from worker.agent.grammar import ActionModel
from worker.agent.parser import ParsedReply, format_action, format_reply, parse_reply


class AutoGlm(Family):
    name: ClassVar[str] = "autoglm"
    convention: ClassVar[Convention] = "grid"

    def builtin_prompt(self, lang: str) -> str:
        return prompts.system_prompt_template(lang)

    def action_list(self, lang: str, size: ImageSize) -> str:
        return prompts.action_lines(lang)

    def messages(self, conversation: Conversation, task: str, image: dict[str, Any]) -> list[dict[str, Any]]:
        return conversation.messages(image)

    def parse(self, text: str, size: ImageSize) -> ParsedReply:
        return parse_reply(text)

    def write_reply(self, thinking: str, action: ActionModel, size: ImageSize) -> str:
        # The action last with no closing </answer>: clients built on the upstream code split at the
        # first do(action= and read the rest as the call (worker/reference_model/replies.py).
        return f"<think>{thinking}</think><answer>{format_action(action)}"

    def assistant_turn(self, parsed: ParsedReply, size: ImageSize) -> str:
        return format_reply(parsed.thinking, parsed.action)
