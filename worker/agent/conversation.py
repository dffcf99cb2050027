"""The chat the model sees: system prompt, earlier turns as text, the newest screenshot only.

Earlier user turns keep their text and lose their image (one image per request keeps requests
small and matches how AutoGLM was trained); assistant turns are rebuilt in the canonical
``<think>…</think><answer>…</answer>`` form. When the history outgrows its token budget, the oldest
turns after the task go first: the task itself is never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def estimate_tokens(text: str) -> int:
    """A cheap upper-bound-ish estimate: ~4 chars a token for Latin text, 1 per CJK character."""
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + (len(text) - cjk) // 4 + 1


@dataclass
class _Turn:
    user: str
    assistant: str | None = None

    def tokens(self) -> int:
        return estimate_tokens(self.user) + (estimate_tokens(self.assistant) if self.assistant else 0)


@dataclass
class Conversation:
    system: str
    token_budget: int = 12000
    turns: list[_Turn] = field(default_factory=list)

    def add_user(self, text: str) -> None:
        self.turns.append(_Turn(user=text))

    def add_assistant(self, text: str) -> None:
        if not self.turns or self.turns[-1].assistant is not None:
            raise RuntimeError("an assistant turn must answer a user turn")
        self.turns[-1].assistant = text

    def _kept(self) -> list[_Turn]:
        if not self.turns:
            return []
        first, rest = self.turns[0], self.turns[1:]
        budget = self.token_budget - estimate_tokens(self.system) - first.tokens()
        kept: list[_Turn] = []
        # Walk back from the newest turn; the newest always stays, whatever its size.
        for turn in reversed(rest):
            cost = turn.tokens()
            if kept and cost > budget:
                break
            kept.append(turn)
            budget -= cost
        return [first, *reversed(kept)]

    def kept_turns(self) -> list[_Turn]:
        """The turns a request carries: the first, and the newest that fit the token budget."""
        return self._kept()

    def messages(self, image_part: dict[str, Any] | None) -> list[dict[str, Any]]:
        """OpenAI chat messages; the image goes with the last (open) user turn."""
        out: list[dict[str, Any]] = [{"role": "system", "content": self.system}]
        kept = self._kept()
        for i, turn in enumerate(kept):
            last = i == len(kept) - 1
            if last and image_part is not None:
                out.append({"role": "user", "content": [image_part, {"type": "text", "text": turn.user}]})
            else:
                out.append({"role": "user", "content": turn.user})
            if turn.assistant is not None:
                out.append({"role": "assistant", "content": turn.assistant})
        return out
