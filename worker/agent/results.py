"""What a run produces: what each action led to, one record per step, and the run's result."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from PIL import Image


class RunStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"  # the model said finish
    FAILED = "failed"  # see ``reason``
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"  # the wall-clock budget ran out


class FailReason(enum.StrEnum):
    MAX_STEPS = "max_steps"
    # A loop (the same action, a short cycle, or actions that change nothing) with agent.on_stuck
    # = fail, or with "ask" and nobody to ask.
    STUCK = "stuck"
    PARSE_ERRORS = "parse_errors"  # N replies in a row held no valid action
    # Unreachable, 5xx, 429 or no answer, past the client's retries and the run's outage budget.
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_ERROR = "model_error"  # an answer no retry can fix: a refused request (4xx), not a chat completion
    DEVICE_ERROR = "device_error"
    DENIED = "denied"  # a person denied a sensitive action
    NEEDS_USER = "needs_user"  # a takeover or question nobody could serve
    NO_ANSWER = "no_answer"  # a person was asked and did not answer within agent.wait_for_user_s


@dataclass
class Outcome:
    """What an action led to: carry on, finish, or stop the run."""

    finished: bool = False
    stop: FailReason | None = None
    message: str = ""
    note: str | None = None  # text for the next model turn (a person's note or answer, feedback)
    step_note: str | None = None  # for the step's record only (what Note and Call_API say)


@dataclass
class StepTimings:
    capture_s: float = 0.0
    model_s: float = 0.0
    act_s: float = 0.0
    settle_s: float = 0.0
    time_to_first_token_s: float | None = None
    image_bytes: int = 0  # the screenshot as sent to the model
    # A planner/grounder pair's step: each model's share of model_s (the grounder's: all its targets).
    planner_s: float | None = None
    grounder_s: float | None = None

    # time.monotonic() once the screenshot was taken: where the step is in the run's recording
    # (worker/run/hooks.py turns it into the step's ``video_ms``). 0: none taken.
    captured_at: float = 0.0


# A step's result while the person it asked has not answered yet: ``on_step`` is called again for
# the same step, with its end, once they have.
WAITING = "waiting"


@dataclass
class StepRecord:
    index: int  # 1-based
    screenshot: Image.Image | None  # what the model saw
    current_app: str
    thinking: str
    action_text: str  # the action as the model wrote it (or the raw reply when it did not parse)
    action: dict[str, Any] | None  # the parsed action (model_dump), None on a parse error
    result: str  # "ok", or what went wrong with this action
    timings: StepTimings
    prompt_tokens: int = 0
    completion_tokens: int = 0
    note: str | None = None  # Note / Call_API text, a person's answer, a takeover note
    # The screenshot's masked regions ({"bounds", "kind"}; worker/agent/redaction.py), never their content.
    redactions: list[dict[str, Any]] = field(default_factory=list)
    # A planner/grounder pair's step: each reply as written, in order ({"role": "planner" | "grounder",
    # "reply", "model_s"}, a grounder's with its "target" and tokens); None for a single model.
    replies: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "redactions": self.redactions,
            "index": self.index,
            "current_app": self.current_app,
            "thinking": self.thinking,
            "action_text": self.action_text,
            "action": self.action,
            "result": self.result,
            "note": self.note,
            "timings": {
                "capture_s": round(self.timings.capture_s, 4),
                "model_s": round(self.timings.model_s, 4),
                "act_s": round(self.timings.act_s, 4),
                "settle_s": round(self.timings.settle_s, 4),
                "time_to_first_token_s": self.timings.time_to_first_token_s,
                "image_bytes": self.timings.image_bytes,
                **{
                    k: round(v, 4)
                    for k in ("planner_s", "grounder_s")
                    if (v := getattr(self.timings, k)) is not None
                },
            },
            "replies": self.replies,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


@dataclass
class AgentResult:
    status: RunStatus
    message: str
    reason: FailReason | None = None
    steps: list[StepRecord] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def step_count(self) -> int:
        return len(self.steps)

    def totals(self) -> dict[str, float]:
        keys = ("capture_s", "model_s", "act_s", "settle_s")
        return {k: round(sum(getattr(s.timings, k) for s in self.steps), 4) for k in keys}

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": sum(s.prompt_tokens for s in self.steps),
            "completion_tokens": sum(s.completion_tokens for s in self.steps),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reason": str(self.reason) if self.reason else None,
            "message": self.message,
            "steps": self.step_count,
            "elapsed_s": round(self.elapsed_s, 3),
            "timings": self.totals(),
            "usage": self.usage(),
        }
