"""The OpenAI chat-completions request: its schema, its errors, and what the policy reads out of it.

The agent loop sends a system prompt, then user turns (the task in the first, a screen-info line
such as ``{"current_app": "Settings"}`` in each) with the newest screenshot as an ``image_url``
data URL, and earlier assistant turns as text. Everything the reference model knows about a task
comes from here: it keeps no state between requests.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from worker.agent.prompts import CHAIN_HEADER, EARLIER_TRIES_HEADER, SECRETS_HEADER

MAX_IMAGE_PIXELS = 4096 * 4096  # a screenshot, not a poster: refuses decompression bombs early


class RequestError(Exception):
    """A request the server refuses; rendered as an OpenAI-style error body."""

    def __init__(
        self, message: str, *, status: int = 400, type_: str = "BadRequestError", code: str | int | None = None,
        param: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type_
        self.code = code if code is not None else status
        self.param = param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ImageURL(BaseModel):
    url: str
    detail: str | None = None


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageURL | str  # some clients send the URL bare

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content or [] if isinstance(p, TextPart))

    @property
    def images(self) -> list[str]:
        if isinstance(self.content, list):
            return [p.url for p in self.content if isinstance(p, ImagePart)]
        return []


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class ChatRequest(BaseModel):
    """The fields we read; anything else an OpenAI client sends (temperature, top_p …) is accepted."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


def parse_request(raw: bytes) -> ChatRequest:
    """The request body as a ChatRequest; RequestError (400) for bad JSON or a bad shape."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RequestError("the body must be a JSON object")
    try:
        return ChatRequest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = ".".join(str(p) for p in err.get("loc", ())) or None
        raise RequestError(f"{param or 'body'}: {err.get('msg', 'invalid value')}", param=param) from exc


_SCREEN_INFO = re.compile(r"\{[^{}]*\"current_app\"[^{}]*\}")
_HEADER_LINE = re.compile(r"^\s*\*\*[^*]+\*\*\s*$")  # "** Screen Info **" in the upstream prompts


@dataclass(frozen=True)
class ChatView:
    """What the policy reads from a request."""

    task: str
    current_app: str | None
    image_url: str | None
    assistant_turns: tuple[str, ...]
    # The names of the secrets it may type (the first turn's "** Secrets **" block), and, on a
    # protected screen, the elements the agent listed from the view tree (label, grid centre).
    secret_names: tuple[str, ...] = ()
    protected: tuple[tuple[str, tuple[int, int]], ...] = ()


def _strip_screen_info(text: str) -> str:
    text = _SCREEN_INFO.sub("", text)
    lines: list[str] = []
    # Inside the earlier-tries or the task-chain block: context for a model that reasons, not the task.
    skipping = False
    for line in text.splitlines():
        if line.strip() in (EARLIER_TRIES_HEADER, CHAIN_HEADER, SECRETS_HEADER):
            skipping = True
        elif not line.strip():
            skipping = False
        if not skipping and not _HEADER_LINE.match(line):
            lines.append(line)
    return "\n".join(lines).strip()


def _current_app(text: str) -> str | None:
    for found in reversed(_SCREEN_INFO.findall(text)):
        try:
            value = json.loads(found).get("current_app")
        except json.JSONDecodeError:
            continue
        if isinstance(value, str) and value:
            return value
    return None


def _secret_names(text: str) -> tuple[str, ...]:
    """The names listed under the secrets header (``prompts.secrets_message``: "…: a, b")."""
    lines = text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == SECRETS_HEADER:
            listed = re.split(r"[:：]", lines[i + 1], maxsplit=1)[-1]
            return tuple(name.strip() for name in listed.split(",") if name.strip())
    return ()


_PROTECTED_ELEMENT = re.compile(r"^- (?P<label>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") at \[(?P<x>\d+),(?P<y>\d+)\]$")


def _protected(text: str) -> tuple[tuple[str, tuple[int, int]], ...]:
    """The elements of a protected screen as the agent lists them (``prompts.protected_screen_message``)."""
    found = []
    for line in text.splitlines():
        m = _PROTECTED_ELEMENT.match(line.strip())
        if m:
            found.append((m.group("label")[1:-1], (int(m.group("x")), int(m.group("y")))))
    return tuple(found)


def read_chat(request: ChatRequest) -> ChatView:
    """The task (first user turn), the app in front and the image (last user turn), earlier replies."""
    users = [m for m in request.messages if m.role == "user"]
    task = _strip_screen_info(users[0].text) if users else ""
    last_text = users[-1].text if users else ""
    images = [url for m in request.messages for url in m.images]
    assistants = tuple(m.text for m in request.messages if m.role == "assistant")
    return ChatView(
        task, _current_app(last_text), images[-1] if images else None, assistants,
        secret_names=_secret_names(users[0].text) if users else (), protected=_protected(last_text),
    )  # fmt: skip


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)$", re.DOTALL)


def decode_image(url: str) -> np.ndarray:
    """An RGB array from a base64 data URL; RequestError for other URLs or undecodable data."""
    match = _DATA_URL.match(url)
    if match is None:
        raise RequestError(
            "image_url must be a base64 data: URL (this server fetches nothing)", param="image_url"
        )
    try:
        raw = base64.b64decode(match.group("data"), validate=False)
        with Image.open(io.BytesIO(raw)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise RequestError(f"the image is too large ({img.width}x{img.height})", param="image_url")
            return np.asarray(img.convert("RGB"))
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise RequestError(f"the image could not be decoded: {exc}", param="image_url") from exc


__all__ = ["ChatRequest", "ChatView", "RequestError", "decode_image", "parse_request", "read_chat"]
