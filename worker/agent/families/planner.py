"""A planner/grounder pair (docs/models.md, "Planner and grounder"): what the two models are asked, and how
their two replies become one typed action.

The planner is any chat model: it speaks the loop's own ``do(...)`` grammar (the ``autoglm`` family's
prompt, with ``PLANNER_NOTE`` after it), but where an action takes a point it writes what to touch in
words, as a string: ``do(action="Tap", element="the Wi-Fi switch")``. Each such target then goes to the
grounder, a vision model of any family, as a one-step task of its own (``ground_task``: "Tap <target>")
in that family's request shape; the point of the action it answers with is where the target is.
A planner may still give a point as numbers (a swipe across the screen, say): that one is not grounded.
"""

from __future__ import annotations

import re
import zlib

from worker.agent.actions import ACTIONS, GRID_SIZE, Point
from worker.agent.errors import ActionRejected
from worker.agent.grammar import ActionModel
from worker.agent.parser import ParsedReply, format_action, parse_reply

__all__ = [
    "GROUND_PREFIX",
    "PLANNER_NOTE",
    "Plan",
    "ground_task",
    "point_of",
    "read_plan",
    "target_of",
    "write_plan",
]

PLANNER_NOTE = (
    "You plan; another model finds things on the screen for you. Wherever an action takes a point "
    "(element, start, end), do not write coordinates: write what to touch in words, as a string, "
    'e.g. do(action="Tap", element="the Wi-Fi switch"). Name it so it can be found on this screen alone.'
)
"""What follows the planner's instructions (the built-in prompt or the endpoint's prompt file)."""

GROUND_PREFIX = "Tap "
"""A grounding request's task is this and the target: a vision agent of any family answers it with a tap."""

# The grammar's names of point arguments (``element``, ``start``, ``end``), read from the actions.
_POINT_ARGS = sorted({
    {field: arg for arg, field in cls.grammar_args.items()}.get(key, key)
    for cls in ACTIONS.values()
    for key, info in cls.model_fields.items()
    if info.annotation == Point
})  # fmt: skip
_TARGET = re.compile(r"\b(?P<arg>" + "|".join(_POINT_ARGS) + r')\s*=\s*"(?P<target>(?:[^"\\]|\\.)*)"')


class Plan(ParsedReply):
    """A planner's reply: its action with a stand-in point for each target, and the targets by field."""

    targets: dict[str, str]


def _stand_in(target: str) -> tuple[int, int]:
    # The same target always stands for the same point, so the loop rules still see a repeated action.
    h = zlib.crc32(target.encode())
    return h % GRID_SIZE, (h // GRID_SIZE) % GRID_SIZE


def read_plan(text: str) -> Plan:
    """A planner's reply; the parser's errors (``parser.parse_reply``) when it holds no action."""
    found: dict[str, str] = {}

    def stand_in(m: re.Match[str]) -> str:
        target = m.group("target").replace('\\"', '"').strip()
        found[m.group("arg")] = target
        x, y = _stand_in(target)
        return f"{m.group('arg')}=[{x},{y}]"

    parsed = parse_reply(_TARGET.sub(stand_in, text))
    cls = type(parsed.action)
    fields = {cls.grammar_args.get(arg, arg): target for arg, target in found.items()}
    targets = {
        f: t for f, t in fields.items() if f in cls.model_fields and cls.model_fields[f].annotation == Point
    }
    return Plan(
        thinking=parsed.thinking, action=parsed.action, action_text=parsed.action_text, targets=targets
    )


def write_plan(thinking: str, action: ActionModel, targets: dict[str, str]) -> str:
    """A planner's reply in the loop's grammar, each point in ``targets`` (field → words) as its words."""
    call = format_action(action)
    cls = type(action)
    for field, target in targets.items():
        arg = {f: a for a, f in cls.grammar_args.items()}.get(field, field)
        words = target.replace("\\", "\\\\").replace('"', '\\"')
        call = re.sub(
            rf"\b{arg}=\[\s*\d+\s*,\s*\d+\s*\]", lambda _m, a=arg, w=words: f'{a}="{w}"', call, count=1
        )
    return f"<think>{thinking}</think><answer>{call}</answer>"


def ground_task(target: str) -> str:
    """The task a grounder is given for one target."""
    return f"{GROUND_PREFIX}{target}"


def target_of(task: str) -> str | None:
    """The target of a grounding task (``ground_task``); None for any other task."""
    return task[len(GROUND_PREFIX) :].strip() if task.startswith(GROUND_PREFIX) else None


def point_of(action: ActionModel, target: str) -> tuple[int, int]:
    """Where the grounder's action points (its first point); ActionRejected, told to the planner, when
    it gave none (it found nothing to tap)."""
    for key, info in type(action).model_fields.items():
        if info.annotation == Point:
            x, y = getattr(action, key)
            return int(x), int(y)
    raise ActionRejected(
        f"the grounder found no point for {target!r} (it answered {action.name})",
        agent_feedback=f'"{target}" could not be found on the screen. Describe it otherwise, or choose '
        "another action.",
    )
