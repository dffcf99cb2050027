"""Reading a chat-completions answer: SSE chunks or one JSON body, content, usage and errors."""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Any, Literal

from worker.agent.conversation import estimate_tokens
from worker.agent.errors import ModelReplyError


class AttemptFailed(Exception):
    """A failure worth another attempt (here or on another endpoint)."""

    def __init__(
        self, kind: Literal["unavailable", "timeout"], message: str, *,
        status: int | None = None, retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


class ChatReply:
    """Assembles one reply from SSE lines or a plain JSON body; raises on what is not a completion."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._data: list[str] = []  # ``data:`` lines of the SSE event being read
        self.model = ""
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self._completion_tokens: int | None = None
        self._saw_choice = False
        self.done = False

    @property
    def content(self) -> str:
        return "".join(self._content)

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    def feed_line(self, line: str) -> bool:
        """One SSE line; True when it completed an event that carried text (content or reasoning)."""
        if self.done:
            return False
        if line.startswith("data:"):
            self._data.append(line[5:].removeprefix(" "))
        elif line == "" and self._data:  # a blank line ends the event
            data, self._data = "\n".join(self._data), []
            return self._feed_event(data)
        return False  # comments (":…"), event:, id:, retry: carry nothing we use

    def finish_stream(self) -> None:
        if self._data and not self.done:
            self._feed_event("\n".join(self._data))
        if not self._saw_choice:
            raise ModelReplyError(
                f"{self.endpoint}: the stream ended without a single choice", endpoint=self.endpoint
            )

    def _feed_event(self, data: str) -> bool:
        if data.strip() == "[DONE]":
            self.done = True
            return False
        obj = load_object(data.encode(), "stream chunk", self.endpoint)
        self._note_meta(obj)
        choices = obj.get("choices")
        text = False
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            self._saw_choice = True
            delta = choice.get("delta") or {}
            text = self._add(delta.get("content"), delta.get("reasoning_content") or delta.get("reasoning"))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return text

    def feed_body(self, raw: bytes) -> None:
        """A whole non-streamed reply."""
        obj = load_object(raw, "reply", self.endpoint)
        self._note_meta(obj)
        choices = obj.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ModelReplyError(f"{self.endpoint} sent a reply with no choices", endpoint=self.endpoint,
                                  context={"body": raw[:300].decode(errors="replace")})  # fmt: skip
        message = choices[0].get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # some servers answer in content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        self._add(content, message.get("reasoning_content") or message.get("reasoning"))
        self.finish_reason = choices[0].get("finish_reason")
        self._saw_choice = True

    def completion_tokens(self) -> tuple[int, bool]:
        """(tokens, estimated): the server's count, else about 1 per CJK character and 1 per 4 others."""
        if self._completion_tokens is not None:
            return self._completion_tokens, False
        return estimate_tokens(self.content + self.reasoning), True

    def _add(self, content: object, reasoning: object) -> bool:
        if isinstance(content, str) and content:
            self._content.append(content)
        if isinstance(reasoning, str) and reasoning:
            self._reasoning.append(reasoning)
        return bool(isinstance(content, str) and content) or bool(isinstance(reasoning, str) and reasoning)

    def _note_meta(self, obj: dict[str, Any]) -> None:
        error = obj.get("error") if "error" in obj else (obj if obj.get("object") == "error" else None)
        if error is not None:
            message = error_text(error)
            code = error.get("code") if isinstance(error, dict) else None
            if isinstance(code, int) and code >= 500:  # the server broke mid-reply: worth another try
                raise AttemptFailed("unavailable", f"server error in reply: {message}", status=code)
            raise ModelReplyError(
                f"{self.endpoint} answered with an error: {message}", endpoint=self.endpoint
            )
        self.model = obj.get("model") or self.model
        usage = obj.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("prompt_tokens"), int):
                self.prompt_tokens = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self._completion_tokens = usage["completion_tokens"]


def load_object(raw: bytes, what: str, endpoint: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw)
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        raise ModelReplyError(f"{endpoint} sent a {what} that is not a JSON object", endpoint=endpoint,
                              context={"body": raw[:300].decode(errors="replace")})  # fmt: skip
    return obj


def error_text(error: object) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:500]
    return str(error)[:500]


def server_message(raw: bytes) -> str:
    """The human part of an error body: OpenAI's ``error.message``, FastAPI's ``detail``, or the text."""
    try:
        obj = json.loads(raw)
    except ValueError:
        return raw[:500].decode(errors="replace").strip() or "(empty body)"
    if isinstance(obj, dict):
        return error_text(obj.get("error") or obj)
    return str(obj)[:500]


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


__all__ = ["AttemptFailed", "ChatReply", "retry_after", "server_message"]
