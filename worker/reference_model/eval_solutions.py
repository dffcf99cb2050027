"""The reference model's scripted evaluation mode: ``model: "scripted"`` plays a template's scripted solution.

A request for the model named ``scripted`` (``SCRIPTED_MODEL``) is answered without OCR: its task
is matched to a template of the built-in suite (``worker.eval.suites.match_instruction``: the
instruction with its parameters), and the reply is the solution's action for this step (the
number of assistant turns so far), so an evaluation with ``--model scripted`` goes the whole way
(API → queue → worker → this server → the phone) with the moves known to be right. A task no
template matches gets a ``finish`` saying so (it then scores what the phone shows: nothing done).

Where it is cheap, the next action follows the screen, not only the count: each reply says which
step it played (its thinking: "step k of n"), and after a ``Launch`` the app the client reports in
front (the request's screen info, no OCR) is compared with the one launched; when it is plainly
another (the launcher: the launch did not take), the ``Launch`` is sent again, at most
``LAUNCH_RETRIES`` times, instead of tapping on the wrong screen. An app the client does not name
goes on as before. Turns without that mark (another player's) count by number.
"""

from __future__ import annotations

import re

from worker.agent.actions import Finish, Launch
from worker.agent.parser import parse_reply
from worker.eval.suites import match_instruction
from worker.reference_model.chat import ChatView
from worker.reference_model.plan import front_package
from worker.reference_model.replies import reply_text

__all__ = ["LAUNCH_RETRIES", "SCRIPTED_MODEL", "solution_reply"]

SCRIPTED_MODEL = "scripted"
LAUNCH_RETRIES = 2  # a Launch sent again at most this often when another app is plainly in front
_PLAYED = re.compile(r"Scripted solution of (\S+), step (\d+) of \d+")


def solution_reply(view: ChatView) -> str:
    """The reply for this request: the matching template's next scripted action."""
    found = match_instruction(view.task) or match_instruction(view.task, "selftest")
    if found is None:
        return reply_text("No template of the built-in suite has this instruction.",
                          Finish(message="I have no scripted solution for this task."))  # fmt: skip
    template, params = found
    steps = template.solution(params)
    step, played = len(view.assistant_turns), _played(view.assistant_turns, template.name)
    if played is not None:
        last, times = played
        step = last + 1
        wanted = _launched(steps[last]) if last < len(steps) else None
        if wanted is not None and times <= LAUNCH_RETRIES and _other_app_in_front(wanted, view.current_app):
            return (f"<think>Scripted solution of {template.name}, step {last + 1} of {len(steps)}, again: "
                    f"{view.current_app} is in front, not {wanted}.</think><answer>{steps[last]}")  # fmt: skip
    if step >= len(steps):
        return reply_text("The scripted solution is over.", Finish(message="Done."))
    return f"<think>Scripted solution of {template.name}, step {step + 1} of {len(steps)}.</think><answer>{steps[step]}"


def _played(turns: tuple[str, ...], name: str) -> tuple[int, int] | None:
    """(the solution step the last turn played, 0-based; how many turns in a row played it), or None
    when the last turn is not this player's for this template."""
    marks = [_PLAYED.search(turn) for turn in turns]
    if not marks or marks[-1] is None or marks[-1].group(1) != name:
        return None
    last = marks[-1].group(2)
    times = 0
    for mark in reversed(marks):
        if mark is None or mark.group(1) != name or mark.group(2) != last:
            break
        times += 1
    return int(last) - 1, times


def _launched(step: str) -> str | None:
    """The app a solution step launches, or None for another action."""
    try:
        action = parse_reply(step).action
    except Exception:  # a step the parser does not take is played as written, never judged here
        return None
    return action.app if isinstance(action, Launch) else None


def _other_app_in_front(app: str, current_app: str | None) -> bool:
    """Whether the client plainly reports another app than ``app`` in front (the launcher counts);
    False when either name tells nothing."""
    wanted, front = front_package(app), front_package(current_app)
    return wanted is not None and front is not None and front != wanted
