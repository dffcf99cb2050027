"""The reference model's scripted evaluation mode: ``model: "scripted"`` plays a template's scripted solution.

A request for the model named ``scripted`` (``SCRIPTED_MODEL``) is answered without OCR: its task
is matched to a template of the built-in suite (``worker.eval.suites.match_instruction``: the
instruction with its parameters), and the reply is the solution's action for this step (the
number of assistant turns so far), so an evaluation with ``--model scripted`` goes the whole way
(API → queue → worker → this server → the phone) with the moves known to be right. A task no
template matches gets a ``finish`` saying so (it then scores what the phone shows: nothing done).
"""

from __future__ import annotations

from worker.agent.actions import Finish
from worker.eval.suites import match_instruction
from worker.reference_model.chat import ChatView
from worker.reference_model.replies import reply_text

__all__ = ["SCRIPTED_MODEL", "solution_reply"]

SCRIPTED_MODEL = "scripted"


def solution_reply(view: ChatView) -> str:
    """The reply for this request: the matching template's next scripted action."""
    found = match_instruction(view.task) or match_instruction(view.task, "selftest")
    if found is None:
        return reply_text("No template of the built-in suite has this instruction.",
                          Finish(message="I have no scripted solution for this task."))  # fmt: skip
    template, params = found
    steps = template.solution(params)
    step = len(view.assistant_turns)
    if step >= len(steps):
        return reply_text("The scripted solution is over.", Finish(message="Done."))
    return f"<think>Scripted solution of {template.name}, step {step + 1} of {len(steps)}.</think><answer>{steps[step]}"
