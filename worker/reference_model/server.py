"""An OpenAI-compatible chat server that answers as AutoGLM-Phone would, from OCR and plain rules.

Routes: ``POST /v1/chat/completions`` (streaming SSE or one JSON body), ``GET /v1/models``,
``GET /healthz`` (and ``/health``, vLLM's name). Errors use the OpenAI body
``{"error": {"message", "type", "param", "code"}}``: 400 for a malformed request, 404 with code
``model_not_found`` for another model's name. Logs carry sizes, digests and decisions, never
image data.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from worker.agent.actions import ActionModel, Finish, Tap
from worker.agent.families.base import point_fields
from worker.agent.families.planner import target_of, write_plan
from worker.agent.ocr import read_text, warm_up
from worker.reference_model.chat import (
    ChatRequest,
    ChatView,
    RequestError,
    decode_image,
    parse_request,
)
from worker.reference_model.dialects import Dialect, dialect
from worker.reference_model.eval_solutions import SCRIPTED_MODEL, solution_reply
from worker.reference_model.grounding import describe, locate
from worker.reference_model.instructions import parse_instruction
from worker.reference_model.plan import History
from worker.reference_model.policy import decide
from worker.reference_model.replies import GREETING, clean_thinking, estimate_tokens, pieces, truncate
from worker.reference_model.screen import Screen
from worker.reference_model.script import scripted_reply

logger = logging.getLogger(__name__)

IMAGE_PATCH = 28  # tokens for an image are estimated as one per 28×28 patch, as Qwen/GLM-V count them


@dataclass(frozen=True)
class ReferenceModelConfig:
    """How the server answers: by rules (no script) or by replaying ``script``."""

    model_name: str = "autoglm-phone-9b"
    family: str = "autoglm"  # the family it reads requests and writes replies in (docs/models.md)
    # "agent": it answers with the next action; "planner": the same, its points as words (the loop's
    # grammar, ``family`` unused); "grounder": it finds a planner's target (grounding.py).
    role: str = "agent"
    script: tuple[str, ...] | None = None
    chunk_chars: int = 16
    max_model_len: int = 32768


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


_FINGERPRINT = re.compile(r"\(screen #([0-9a-f]{6})\)")


def _history(
    turns: tuple[str, ...],
    now: str | None = None,
    *,
    speaks: Dialect | None = None,
    size: tuple[int, int] = (1, 1),
    screen: Screen | None = None,
) -> History:
    """The earlier actions, and whether each changed the screen: every reply names the screen it saw
    (``(screen #abc123)`` in its reasoning), so the next reply's name, or ``now``, tells."""
    actions: list[ActionModel] = []
    seen: list[str | None] = []
    found = (lambda target: locate(screen, target)) if screen is not None else None
    for action, text in (speaks or dialect("autoglm")).earlier_actions(turns, size, found):
        if action is None:
            continue  # a turn we cannot read tells us nothing about progress
        actions.append(action)
        m = _FINGERPRINT.search(text)
        seen.append(m.group(1) if m else None)
    after = [*seen[1:], now][: len(seen)]
    unchanged = tuple(None if a is None or b is None else a == b for a, b in zip(seen, after, strict=True))
    return History(tuple(actions), unchanged)


def _decide_from_image(view: ChatView, speaks: Dialect, role: str = "agent") -> tuple[str, int]:
    """Decode, read and decide (blocking: run in a thread); returns the reply and the image's tokens."""
    assert view.image_url is not None
    image = decode_image(view.image_url)
    height, width = image.shape[:2]
    tokens = -(-width // IMAGE_PATCH) * -(-height // IMAGE_PATCH)
    t0 = time.monotonic()
    screen = Screen(image, read_text(image), current_app=view.current_app, protected=view.protected)
    if role == "grounder":
        return _ground(view, speaks, screen), tokens
    goal = parse_instruction(view.task)
    fingerprint = screen.fingerprint()
    history = _history(view.assistant_turns, fingerprint, speaks=speaks, size=(width, height), screen=screen)
    decision = decide(goal, view.task, screen, history, secret_names=view.secret_names)
    thinking = f"{decision.thinking} (screen #{fingerprint})"
    if role == "planner":
        action = decision.action
        targets = {key: describe(screen, getattr(action, key)) for key in point_fields(type(action))}
        text = write_plan(clean_thinking(thinking), action, targets)
    else:
        text = speaks.write(thinking, decision.action, (width, height))
    logger.info(
        "decision: intent=%s rule=%s app=%s step=%d ocr_lines=%d took=%.2fs answer=%s",
        goal.intent.value if goal else "none", decision.rule, view.current_app, len(view.assistant_turns),
        len(screen.boxes), time.monotonic() - t0, text[-200:],
    )  # fmt: skip
    return text, tokens


def _ground(view: ChatView, speaks: Dialect, screen: Screen) -> str:
    """A grounder's reply: a tap on the target its task names, or a finish saying it is not there."""
    target = target_of(view.task) or view.task
    point = locate(screen, target)
    size = (screen.width, screen.height)
    logger.info("grounding: target=%r point=%s", target[:200], point)
    if point is None:
        return speaks.write(f"I cannot find {target} on this screen.", Finish(message=f"not found: {target}"), size)
    return speaks.write(f"{target} is here.", Tap(element=point), size)


def _image_summary(url: str | None) -> str:
    if url is None:
        return "none"
    return f"{len(url)} chars sha1={hashlib.sha1(url.encode()).hexdigest()[:12]}"


async def _complete(config: ReferenceModelConfig, request: ChatRequest) -> Completion:
    speaks = dialect("autoglm" if config.role == "planner" else config.family, planner=config.role == "planner")
    view = speaks.read(request)
    prompt_tokens = sum(estimate_tokens(m.text) for m in request.messages)
    if request.model == SCRIPTED_MODEL and view.task:
        content = solution_reply(view)  # an evaluation's --model scripted: the template's own solution
    elif config.script is not None:
        content = scripted_reply(config.script, len(view.assistant_turns))
        logger.info("scripted reply for step %d", len(view.assistant_turns))
    elif view.image_url is None or not view.task:
        content = GREETING  # the client's start-up probe ("Hi", no image) and other plain chat
    else:
        content, image_tokens = await asyncio.to_thread(_decide_from_image, view, speaks, config.role)
        prompt_tokens += image_tokens
    content, finish_reason = truncate(content, request.token_limit)
    return Completion(content, finish_reason, prompt_tokens, estimate_tokens(content))


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> str:
    body = {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }  # fmt: skip
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _stream(
    config: ReferenceModelConfig, request: ChatRequest, completion: Completion, cid: str, created: int
) -> AsyncIterator[str]:
    model = request.model or config.model_name
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""}, None)
    for piece in pieces(completion.content, config.chunk_chars):
        yield _chunk(cid, created, model, {"content": piece}, None)
    yield _chunk(cid, created, model, {}, completion.finish_reason)
    if request.stream_options is not None and request.stream_options.include_usage:
        usage = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [], "usage": completion.usage()}  # fmt: skip
        yield f"data: {json.dumps(usage)}\n\n"
    yield "data: [DONE]\n\n"


def create_app(config: ReferenceModelConfig) -> FastAPI:
    """The reference model's ASGI app."""
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Load OCR in the background: /healthz answers at once, the first screenshot finds it ready.
        loading = asyncio.create_task(asyncio.to_thread(warm_up)) if config.script is None else None
        yield
        if loading is not None and not loading.done():
            await asyncio.wait({loading}, timeout=10)

    app = FastAPI(title="PhoneFleet reference model", docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
        logger.info("refused: %s %s", exc.status, exc.message)
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/healthz")
    @app.get("/health")
    async def healthz() -> dict[str, str]:
        return {
            "status": "ok",
            "model": config.model_name,
            "mode": "script" if config.script is not None else "rules",
            "family": config.family,
            "role": config.role,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": config.model_name, "object": "model", "created": started, "owned_by": "phonefleet",
                "root": config.model_name, "parent": None, "max_model_len": config.max_model_len}  # fmt: skip
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(raw: Request) -> JSONResponse | StreamingResponse:
        body = await raw.body()
        request = parse_request(body)
        if request.model is not None and request.model not in (config.model_name, SCRIPTED_MODEL):
            raise RequestError(
                f"The model `{request.model}` does not exist.", status=404, type_="NotFoundError",
                code="model_not_found", param="model",
            )  # fmt: skip
        logger.info(
            "chat request: %d bytes, %d messages, stream=%s, image %s",
            len(body), len(request.messages), request.stream, _image_summary(dialect(config.family).read(request).image_url),
        )  # fmt: skip
        completion = await _complete(config, request)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if request.stream:
            return StreamingResponse(
                _stream(config, request, completion, cid, created),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return JSONResponse({
            "id": cid, "object": "chat.completion", "created": created, "model": request.model or config.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.content},
                         "logprobs": None, "finish_reason": completion.finish_reason}],
            "usage": completion.usage(),
        })  # fmt: skip

    return app


__all__ = ["ReferenceModelConfig", "create_app"]
