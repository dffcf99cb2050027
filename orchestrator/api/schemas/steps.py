"""Response body of a task's steps (``/api/v1/tasks/{id}/steps``)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.db import Step

__all__ = ["StepOut"]


class StepOut(BaseModel):
    """One step: what the model saw, thought and did, or what a person did during a takeover."""

    index: int
    actor: Literal["agent", "user"] = Field(
        description="Who acted: the agent, or a person on the live view during a takeover (their taps, "
        "swipes, keys and typing, and the hand-back with its note). Typed text in a password field is "
        "recorded as •••."
    )
    created_at: dt.datetime
    current_app: str | None
    thinking: str | None
    action_text: str | None = Field(description='The action as the model wrote it: do(action="Tap", …).')
    action: dict[str, Any] | None = Field(description="The parsed action.")
    result: str | None
    note: str | None
    timings: dict[str, Any] = Field(description="Seconds: capture_s, model_s, act_s, settle_s.")
    prompt_tokens: int | None
    completion_tokens: int | None
    screenshot_url: str | None
    redactions: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Regions of the screenshot masked before the model saw it and before it was stored: "
        '{"bounds": [left, top, right, bottom] in the screenshot\'s pixels, "kind": "password" or a text '
        "pattern's name}. Never what they held.",
    )
    replies: list[dict[str, Any]] | None = Field(
        default=None,
        description="A planner/grounder pair's step: each model's reply as written, in order, "
        '{"role": "planner" | "grounder", "reply", "model_s"}, a grounder\'s with the "target" it was asked '
        "to find and its tokens; timings then has planner_s and grounder_s. Null: one model answered.",
    )
    subgoal: int | None = Field(
        default=None,
        description="The task chain's subgoal (its index) this step was made for; null: no chain.",
    )

    @classmethod
    def from_row(cls, step: Step) -> StepOut:
        url = f"/api/v1/tasks/{step.task_id}/steps/{step.index}/screenshot" if step.screenshot else None
        return cls(
            index=step.index, actor=step.actor or "agent", created_at=step.created_at, current_app=step.current_app,
            thinking=step.thinking, action_text=step.action_text, action=step.action, result=step.result,
            note=step.note, timings=step.timings, prompt_tokens=step.prompt_tokens,
            completion_tokens=step.completion_tokens, screenshot_url=url, redactions=step.redactions or [],
            replies=step.replies, subgoal=step.subgoal,
        )  # fmt: skip
