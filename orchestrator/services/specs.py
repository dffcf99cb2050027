"""What a caller may ask for: the validated shape of a task submission (the domain rules, not HTTP).

Beyond lengths and ranges, strings and JSON are checked for what the databases refuse, so such
input answers 422 instead of failing in the INSERT: NUL characters (PostgreSQL text and JSONB
reject them), lone surrogates (not encodable as UTF-8) and NaN/Infinity (not JSON).
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    UrlConstraints,
    field_validator,
    model_validator,
)

from device_pool.driver.apps import is_package_name
from orchestrator.settings import PROFILE_NAME_PATTERN

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_METADATA_BYTES",
    "MAX_PROFILE_BYTES",
    "MAX_SUBGOALS",
    "MAX_TRIES",
    "ON_STEP_FAILURE",
    "AllowedApps",
    "ProfileName",
    "TaskSpec",
    "plain_text",
]

MAX_METADATA_BYTES = 16 * 1024
MAX_PROFILE_BYTES = 4 * 1024
MAX_JSON_DEPTH = 32
MAX_TRIES = 5  # a task's max_tries at most: each try may use max_steps steps
MAX_SUBGOALS = 10  # a chain's subgoals at most: each is a new agent run (with all of max_steps)
MAX_SUBGOAL_CHARS = 500
# What a failed subgoal does: end the chain, or ask the person (retry / skip / cancel).
ON_STEP_FAILURE = ("stop", "ask")

MAX_URL_CHARS = 2048  # tasks.webhook_url is VARCHAR(2048)


def _fits_column(url: HttpUrl) -> HttpUrl:
    # max_length counts the input, but the URL is stored normalised: a "/" path is added and
    # non-ASCII characters are percent-encoded (up to 9 bytes each), so a valid input could overflow
    # the column (a 500 the fuzz test found).
    if len(str(url)) > MAX_URL_CHARS:
        raise ValueError(f"the URL is longer than {MAX_URL_CHARS} characters once normalised")
    return url


WebhookUrl = Annotated[
    HttpUrl,
    UrlConstraints(max_length=MAX_URL_CHARS, allowed_schemes=["http", "https"]),
    AfterValidator(_fits_column),
]
# A named profile (settings pool.profiles); its syntax is checked here, whether it exists by the service.
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME_PATTERN)]


def plain_text(value: str | None) -> str | None:
    """What PostgreSQL's JSONB and UTF-8 refuse (NUL, lone surrogates) raises ValueError, so it
    answers 422 rather than failing the INSERT; None passes."""
    if value is None:
        return value
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode (no lone surrogates)") from exc
    return value


def _check_json(value: Any) -> None:
    # Iterative, with a depth cap: recursion on hostile nesting would end in RecursionError (a 500).
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(item, str):
            plain_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                plain_text(str(key))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _json_size(value: Any, limit: int) -> None:
    _check_json(value)
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode())
    except ValueError as exc:  # NaN or Infinity
        raise ValueError("must be plain JSON (no NaN or Infinity)") from exc
    if size > limit:
        raise ValueError(f"is {size} bytes as JSON; at most {limit} bytes are allowed")


MAX_ALLOWED_APPS = 100


def _package_names(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    for name in value:
        if not is_package_name(name):
            raise ValueError(f"{name!r} is not a package name (like com.android.settings)")
    return list(dict.fromkeys(value))  # each once, in the order given


# The apps a task, schedule or personal phone allows (docs/security.md, "App allowlist").
AllowedApps = Annotated[
    list[Annotated[str, StringConstraints(min_length=3, max_length=255)]] | None,
    Field(
        default=None,
        max_length=MAX_ALLOWED_APPS,
        description="Package names of the only apps the agent may use (the launcher and system UI are "
        "always allowed); null: any app. A Launch of another app is refused; reaching one another way "
        "pauses the task with a question.",
    ),
    AfterValidator(_package_names),
]


class TaskSpec(BaseModel):
    """A task submission (``POST /api/v1/tasks``)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=1, max_length=2000, description="What to do, in plain language (1–2000 characters)."
    )
    device_profile: dict[str, Any] | ProfileName | None = Field(
        default=None,
        description='What the phone must match: an object, e.g. {"android": 13, "apps": '
        '["com.android.settings"]}, or the name of a profile the operator defined, e.g. "pixel13" '
        "(its tasks have a queue of their own).",
    )
    max_steps: int = Field(default=30, ge=1, le=100, description="Agent steps before giving up, per try.")
    max_tries: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TRIES,
        description="Tries the agent gets: after it fails (stuck, max_steps, says it cannot), it starts "
        "again on the same phone from the current screen, told what went wrong. null: the server's "
        "default (tasks.default_max_tries, 1 unless set).",
    )
    subgoals: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBGOAL_CHARS)]] | None = (
        Field(
            default=None,
            min_length=1,
            max_length=MAX_SUBGOALS,
            description="A task chain: parts of the task in plain language, run one after another on the "
            "same phone, each a new agent run with the instruction as context; each gets its own status, "
            "steps and result (1–10, each 1–500 characters). null: no chain.",
        )
    )
    on_step_failure: Literal["stop", "ask"] | None = Field(
        default=None,
        description="What a failed subgoal does: stop (the chain ends, the task fails) or ask (the task "
        "waits for the person's reply: retry, skip or cancel). Only with subgoals; null: stop.",
    )
    timeout_s: int = Field(default=600, ge=10, le=3600, description="Wall-clock budget in seconds.")
    model: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="The model endpoint's name (GET /api/v1/models); null: the first, the server's default. "
        "An endpoint's served model name is accepted for it; any other name answers 422.",
    )
    webhook_url: WebhookUrl | None = Field(default=None, description="http(s) URL told about every event.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Your own JSON object, kept with the task (≤ 16 KB as JSON)."
    )
    retry_after_acting: bool | None = Field(
        default=None,
        description="May an attempt that ended because of the infrastructure (model server, phone, "
        "worker down) be retried after the task acted on the phone? null: yes, unless it made a "
        "sensitive step (a confirmation or a person's takeover).",
    )
    personal_phone_id: uuid.UUID | None = Field(
        default=None,
        description="Run on your personal phone (woken if asleep; its data is kept after the task). "
        "Not with device_profile: the phone has its own.",
    )
    allowed_apps: AllowedApps = None

    @model_validator(mode="after")
    def _one_shape(self) -> TaskSpec:
        if self.personal_phone_id is not None and self.device_profile is not None:
            raise ValueError("personal_phone_id and device_profile are exclusive: a personal phone has its own shape")
        if self.on_step_failure is not None and self.subgoals is None:
            raise ValueError("on_step_failure needs subgoals: it says what a failed subgoal does")
        return self

    @field_validator("subgoals", mode="after")
    @classmethod
    def _subgoals(cls, value: list[str] | None) -> list[str] | None:
        for goal in value or ():
            plain_text(goal)
            if not goal.strip():
                raise ValueError("a subgoal must not be blank")
        return value

    @field_validator("instruction", mode="after")
    @classmethod
    def _instruction(cls, value: str) -> str:
        plain_text(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("model", mode="after")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return plain_text(value)

    @field_validator("device_profile", mode="after")
    @classmethod
    def _profile(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        if isinstance(value, dict):
            _json_size(value, MAX_PROFILE_BYTES)
        return value

    @field_validator("metadata", mode="after")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        _json_size(value, MAX_METADATA_BYTES)
        return value

    def stored_fields(self) -> dict[str, Any]:
        """The fields as the task row stores them (the URL as text)."""
        return {
            "instruction": self.instruction,
            "device_profile": self.device_profile,
            "max_steps": self.max_steps,
            "max_tries": self.max_tries,
            "subgoals": self.subgoals,
            "on_step_failure": None if self.subgoals is None else (self.on_step_failure or "stop"),
            "timeout_s": self.timeout_s,
            "model": self.model,
            "webhook_url": None if self.webhook_url is None else str(self.webhook_url),
            "metadata": self.metadata,
            "retry_after_acting": self.retry_after_acting,
            "personal_phone_id": self.personal_phone_id,
            "allowed_apps": self.allowed_apps,
        }
