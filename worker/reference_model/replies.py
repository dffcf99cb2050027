"""The text of a reply: the AutoGLM form, token estimates, truncation and streaming pieces.

A reply is ``<think>reasoning</think><answer>ACTION`` with no closing ``</answer>``: clients built
on the upstream AutoGLM code split at the first ``do(action=`` and read the rest as the call, so
the action must be the last thing (a trailing ``</answer>`` would be read as part of it). Our own
parser accepts either form. For the same reason the reasoning never contains ``do(action=`` or ``finish(message=``.
"""

from __future__ import annotations

from worker.agent.actions import ActionModel
from worker.agent.conversation import estimate_tokens
from worker.agent.parser import format_action

GREETING = "Hello! I am the PhoneFleet reference model. Send a task and a screenshot and I will answer with one action."
_MARKERS = ("do(action=", "finish(message=", "<answer>", "</answer>", "<think>", "</think>")


def clean_thinking(text: str) -> str:
    """Reasoning text that cannot be mistaken for an action or a tag."""
    for marker in _MARKERS:
        text = text.replace(marker, marker.replace("(", " (").replace("<", "‹").replace(">", "›"))
    return " ".join(text.split())


def reply_text(thinking: str, action: ActionModel) -> str:
    """An assistant reply in the AutoGLM form, the action last."""
    return f"<think>{clean_thinking(thinking)}</think><answer>{format_action(action)}"


def truncate(text: str, max_tokens: int | None) -> tuple[str, str]:
    """``text`` cut to about ``max_tokens`` tokens, and the finish reason ("stop" or "length")."""
    if max_tokens is None or estimate_tokens(text) <= max_tokens:
        return text, "stop"
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix within the budget
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo], "length"


def pieces(text: str, size: int) -> list[str]:
    """``text`` in streaming deltas of about ``size`` characters."""
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


__all__ = ["GREETING", "clean_thinking", "estimate_tokens", "pieces", "reply_text", "truncate"]
