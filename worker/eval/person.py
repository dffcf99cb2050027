"""The suite's scripted person: what a person would answer when the agent asks, during an evaluation.

It approves confirmations (the task asked to pay), does a takeover the template describes (logs in
to the Bank on the phone itself, through ``input``), and answers a question as the template says:
with text, or by cancelling the task (an infeasible task: the right answer was to ask). Every other
hook goes to the run's own hooks (steps, states, events are recorded as for any task). What it was
asked and answered is kept for the task's result.
"""

from __future__ import annotations

from typing import Any

from worker.agent.actions import Action
from worker.agent.steering import AgentSteering
from worker.eval.phone import EvalPhone
from worker.eval.template import CANCEL, Params, Template

__all__ = ["ScriptedPerson"]


class ScriptedPerson:
    """Hooks for an evaluated run: the run's ``hooks`` with a scripted person answering."""

    def __init__(self, hooks: Any, steering: AgentSteering, template: Template, params: Params, phone: EvalPhone):
        self._hooks, self._steering = hooks, steering
        self.template, self.params, self.phone = template, params, phone
        self.log: list[dict[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hooks, name)

    @property
    def asked(self) -> bool:
        return any(entry["kind"] == "question" for entry in self.log)

    async def request_confirmation(self, action: Action, message: str, element_label: str | None = None) -> bool:
        self.log.append({"kind": "confirmation", "request": message, "answer": "approved"})
        return True

    async def request_takeover(self, message: str) -> str | None:
        if self.template.takeover is None:
            self.log.append({"kind": "takeover", "request": message, "answer": "cancelled"})
            self._steering.cancel("the scripted person cancelled: this task needs no takeover")
            return None
        note = await self.template.takeover(self.phone, self.params)
        self.log.append({"kind": "takeover", "request": message, "answer": note})
        return note

    async def ask_user(self, question: str) -> str | None:
        answer = self.template.answer(question, self.params)
        self.log.append({"kind": "question", "request": question, "answer": answer})
        if answer == CANCEL:
            self._steering.cancel("the scripted person cancelled after the agent's question")
            return None
        return answer

    async def user_steps(self) -> list[str] | None:
        return None
