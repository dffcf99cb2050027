"""What a caller may ask for: the validated shape of a task submission (the domain rules, not HTTP).

Beyond lengths and ranges, strings and JSON are checked for what the databases refuse, so such
input answers 422 instead of failing in the INSERT: NUL characters (PostgreSQL text and JSONB
reject them), lone surrogates (not encodable as UTF-8) and NaN/Infinity (not JSON).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, UrlConstraints, field_validator

__all__ = ["MAX_JSON_DEPTH", "MAX_METADATA_BYTES", "MAX_PROFILE_BYTES", "TaskSpec"]

MAX_METADATA_BYTES = 16 * 1024
MAX_PROFILE_BYTES = 4 * 1024
MAX_JSON_DEPTH = 32

WebhookUrl = Annotated[HttpUrl, UrlConstraints(max_length=2048, allowed_schemes=["http", "https"])]


def _check_text(value: str) -> str:
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
            _check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(str(key))
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


class TaskSpec(BaseModel):
    """A task submission (``POST /api/v1/tasks``)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=1, max_length=2000, description="What to do, in plain language (1–2000 characters)."
    )
    device_profile: dict[str, Any] | None = Field(
        default=None,
        description='What the phone must match, e.g. {"android": 13, "apps": ["com.android.settings"]}.',
    )
    max_steps: int = Field(default=30, ge=1, le=100, description="Agent steps before giving up.")
    timeout_s: int = Field(default=600, ge=10, le=3600, description="Wall-clock budget in seconds.")
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="Model name; default: the server's."
    )
    webhook_url: WebhookUrl | None = Field(default=None, description="http(s) URL told about every event.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Your own JSON object, kept with the task (≤ 16 KB as JSON)."
    )

    @field_validator("instruction", mode="after")
    @classmethod
    def _instruction(cls, value: str) -> str:
        _check_text(value)
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("model", mode="after")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return None if value is None else _check_text(value)

    @field_validator("device_profile", mode="after")
    @classmethod
    def _profile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
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
            "timeout_s": self.timeout_s,
            "model": self.model,
            "webhook_url": None if self.webhook_url is None else str(self.webhook_url),
            "metadata": self.metadata,
        }
