"""Scripted mode: replay a fixed list of replies, for deterministic tests of the agent loop.

The script is a JSON list of strings. Each is a whole reply (returned as written) or a bare action
call starting with ``do(`` or ``finish(`` (wrapped in the reply form). The reply for a request is
entry *n*, where *n* is the number of assistant turns already in its messages; past the end the
answer is ``finish(message="script ended")``.
"""

from __future__ import annotations

import json
from pathlib import Path

from worker.agent.actions import Finish
from worker.reference_model.replies import reply_text

END_MESSAGE = "script ended"


class ScriptError(ValueError):
    """The script file is missing, not JSON, or not a list of strings."""


def load_script(path: Path) -> tuple[str, ...]:
    """The replies in a script file; ScriptError when it cannot be used."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScriptError(f"cannot read the script {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ScriptError(f"the script {path} is not JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise ScriptError(f"the script {path} must be a JSON list of strings")
    return tuple(data)


def scripted_reply(script: tuple[str, ...], step: int) -> str:
    """The reply for the request that already holds ``step`` assistant turns."""
    if step >= len(script):
        return reply_text("The script has no more steps.", Finish(message=END_MESSAGE))
    entry = script[step]
    if entry.lstrip().startswith(("do(", "finish(")):
        return f"<think>Scripted step {step + 1}.</think><answer>{entry.strip()}"
    return entry


__all__ = ["END_MESSAGE", "ScriptError", "load_script", "scripted_reply"]
