"""The agent's branches of the error tree (the base lives in ``device_pool/errors.py``).

    PhoneFleetError
    ├─ ModelError                the model server failed us
    │  ├─ ModelUnavailable       refused, 5xx, 429, connection error, every endpoint down   [retryable]
    │  ├─ ModelTimeout           no (complete) answer within the deadline                   [retryable]
    │  └─ ModelReplyError        an answer that is not a chat completion (bad JSON, no choices)
    ├─ ActionError (agent_feedback)   the model's action cannot be carried out
    │  ├─ ActionParseError (raw)      the reply holds no well-formed action — never a finish
    │  ├─ UnknownAction (name)        a well-formed call of an action we do not know
    │  └─ ActionRejected              a known action with arguments that cannot work (off-grid point…)
    └─ NoAnswer                  a person was asked and did not answer within the wait allowed

``agent_feedback`` is the text fed back to the model in its next turn; ``message`` is for operators.
"""

from __future__ import annotations

from typing import Any

from device_pool.errors import PhoneFleetError


class ModelError(PhoneFleetError):
    code = "model_error"

    def __init__(
        self, message: str, *, endpoint: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        ctx = dict(context or {})
        if endpoint is not None:
            ctx.setdefault("endpoint", endpoint)
        super().__init__(message, context=ctx)
        self.endpoint = endpoint


class ModelUnavailable(ModelError):
    code = "model_unavailable"
    retryable = True


class ModelTimeout(ModelError):
    code = "model_timeout"
    retryable = True


class ModelReplyError(ModelError):
    code = "model_reply_error"


class ActionError(PhoneFleetError):
    code = "action_error"

    def __init__(
        self, message: str, *, agent_feedback: str | None = None, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, context=context)
        self.agent_feedback = agent_feedback or message


class ActionParseError(ActionError):
    code = "action_parse_error"

    def __init__(self, message: str, *, raw: str, agent_feedback: str | None = None) -> None:
        super().__init__(message, agent_feedback=agent_feedback, context={"raw": raw[:2000]})
        self.raw = raw


class UnknownAction(ActionError):
    code = "unknown_action"

    def __init__(self, name: str, *, raw: str = "") -> None:
        super().__init__(
            f"unknown action {name!r}",
            agent_feedback=f'There is no action called "{name}". Use one of the actions listed in the rules.',
            context={"name": name, "raw": raw[:2000]},
        )
        self.name = name
        self.raw = raw


class ActionRejected(ActionError):
    code = "action_rejected"


class NoAnswer(PhoneFleetError):
    """Raised by the hooks when a question, takeover or confirmation waited its limit
    (``agent.wait_for_user_s``) for a person: the run ends failed/``no_answer``."""

    code = "no_answer"


__all__ = [
    "ActionError",
    "ActionParseError",
    "ActionRejected",
    "ModelError",
    "ModelReplyError",
    "ModelTimeout",
    "ModelUnavailable",
    "NoAnswer",
    "UnknownAction",
]
