"""An async OpenAI-compatible chat-completions client: streaming, retries, failover, shared caps.

- Streams by default (SSE with ``stream_options.include_usage``); reads a plain JSON reply too.
- Retries 429 (honouring Retry-After), 408/5xx, connection errors and timeouts, with exponential
  backoff and full jitter. Any other 4xx is the caller's mistake (a wrong model name…) and raises
  ``ModelReplyError`` at once, as does a reply that is not a chat completion.
- Fails over between endpoints: each call starts at the next endpoint (round robin from a random
  start, so processes spread their load); an endpoint that failed within ``breaker_cooldown_s``
  is tried last.
- Caps in-flight requests per endpoint with ``model_limits`` (across processes when given Redis).
- Cancelling the task awaiting ``chat()`` closes the HTTP stream at once and frees the slot.
- ``chat(on_retry=…)`` is awaited with each failure that another attempt follows, so a caller can
  say why it waits (the worker shows it as the task's ``model_unavailable`` wait).

Errors (``worker.agent.errors``): ``ModelUnavailable`` / ``ModelTimeout`` when retries run out
(the last failure decides which), ``ModelReplyError`` for answers that retrying cannot fix. What
the client is told (``ModelEndpoint``, ``ModelClientConfig``) lives in ``model_config.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import redis.asyncio as aioredis
from PIL import Image

from worker.agent.errors import ModelReplyError, ModelTimeout, ModelUnavailable
from worker.agent.images import (
    EncodedImage,
    encode_screenshot,
    encode_screenshot_async,
    image_part,
)
from worker.agent.model_config import ModelClientConfig, ModelEndpoint
from worker.agent.model_limits import LocalSlots, RedisSlots, SlotLimiter
from worker.agent.model_reply import AttemptFailed, ChatReply, retry_after, server_message

logger = logging.getLogger(__name__)

# After [DONE], how long to read on for the end of the response so the connection can be reused
# (a new TLS handshake per agent step costs more than this wait on a well-behaved server: none).
_DRAIN_S = 0.5


@dataclass(frozen=True)
class ModelResponse:
    """One chat completion and the numbers that describe how it was obtained.

    ``time_to_first_token_s`` counts from sending the successful request (None when nothing came
    back or the reply was not streamed); ``total_s`` spans the whole ``chat()`` call, retries and
    slot waits included; ``slot_wait_s`` is the successful attempt's wait for an in-flight slot.
    Without usage from the server, ``completion_tokens`` is estimated from the text,
    ``prompt_tokens`` is 0 and ``usage_estimated`` is set.
    """

    content: str
    model: str
    endpoint: str
    time_to_first_token_s: float | None
    total_s: float
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    reasoning_content: str = ""
    finish_reason: str | None = None
    usage_estimated: bool = False
    slot_wait_s: float = 0.0


@dataclass
class _EndpointState:
    failed_until: float = 0.0  # monotonic; circuit breaker: tried last until then
    not_before: float = 0.0  # monotonic; from Retry-After


class ModelClient:
    """Chat completions against one or more endpoints; see the module docstring for the policy.

    ``redis`` (not closed here) makes the in-flight cap hold across processes; without it the cap
    holds per client. ``http`` (not closed here either) replaces the client's own
    ``httpx.AsyncClient``, which ignores proxy environment variables.
    """

    def __init__(
        self,
        config: ModelClientConfig,
        *,
        redis: aioredis.Redis | None = None,
        http: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=self._timeout(), trust_env=False, limits=httpx.Limits(max_connections=None)
        )
        self._limiters: list[SlotLimiter] = [
            RedisSlots(
                redis,
                ep.name,
                ep.max_in_flight,
                prefix=config.redis_key_prefix,
                lease_ttl_s=config.slot_lease_ttl_s,
            )
            if redis is not None
            else LocalSlots(ep.max_in_flight)
            for ep in config.endpoints
        ]
        self._state = [_EndpointState() for _ in config.endpoints]
        self._next = self._rng.randrange(len(config.endpoints))

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._http.aclose()

    async def encode_image(self, img: Image.Image) -> EncodedImage:
        """Encode a screenshot with this client's image settings, off the event loop."""
        cfg = self.config
        return await encode_screenshot_async(img, cfg.image_max_pixels, cfg.image_format, cfg.jpeg_quality)

    def image_part(self, img: Image.Image) -> dict[str, Any]:
        """A content part for ``img`` with this client's image settings; blocks for the encode (ms for JPEG)."""
        cfg = self.config
        return image_part(encode_screenshot(img, cfg.image_max_pixels, cfg.image_format, cfg.jpeg_quality))

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        max_tokens: int | None = None,
        on_retry: Callable[[str], Awaitable[None]] | None = None,
    ) -> ModelResponse:
        """Send ``messages`` and return the assembled reply; ``on_retry(failure)`` is awaited before
        each retry.

        Raises ``ModelUnavailable`` or ``ModelTimeout`` once every attempt failed (or no slot
        freed up within ``slot_wait_timeout_s``), ``ModelReplyError`` for a refused request or
        an answer that is not a chat completion.
        """
        cfg = self.config
        started = time.monotonic()
        messages_json = json.dumps(messages, ensure_ascii=False)  # once, not per endpoint
        order = self._order()
        failures_here = [0] * len(order)
        excluded: set[int] = set()
        last: AttemptFailed | None = None
        last_idx = order[0]
        attempts = 0
        pos = 0
        while attempts <= cfg.max_retries:
            idx = next((order[(pos + k) % len(order)] for k in range(len(order))
                        if order[(pos + k) % len(order)] not in excluded), None)  # fmt: skip
            if idx is None:
                break  # every endpoint asked us to come back later than we will wait
            pos = order.index(idx) + 1
            delay = self._delay(idx, failures_here[idx])
            if delay > 0:
                await asyncio.sleep(delay)
            attempts += 1
            ep = cfg.endpoints[idx]
            try:
                reply, ttft, slot_wait = await self._attempt(idx, messages_json, max_tokens)
            except AttemptFailed as failure:
                last, last_idx = failure, idx
                failures_here[idx] += 1
                self._note_failure(idx, failure)
                if failure.retry_after is not None and failure.retry_after > cfg.retry_after_max_s:
                    excluded.add(idx)
                logger.warning(
                    "model request to %s (%s) failed, attempt %d: %s", ep.base_url, ep.model, attempts, failure.message,
                    extra={"endpoint": ep.base_url, "model": ep.model, "status": failure.status,
                           "kind": failure.kind, "error": failure.message, "attempt": attempts},
                )  # fmt: skip
                if on_retry is not None and attempts <= cfg.max_retries:
                    await on_retry(failure.message)
                continue
            self._state[idx].failed_until = 0.0
            total = time.monotonic() - started
            completion, estimated = reply.completion_tokens()
            response = ModelResponse(
                content=reply.content, model=reply.model or ep.model, endpoint=ep.base_url,
                time_to_first_token_s=ttft, total_s=total, prompt_tokens=reply.prompt_tokens or 0,
                completion_tokens=completion, attempts=attempts, reasoning_content=reply.reasoning,
                finish_reason=reply.finish_reason, usage_estimated=estimated, slot_wait_s=slot_wait,
            )  # fmt: skip
            logger.debug(
                "model reply",
                extra={"endpoint": ep.base_url, "model": ep.model, "attempts": attempts, "ttft_s": ttft,
                       "total_s": round(total, 3), "chars": len(reply.content), "tokens": completion},
            )  # fmt: skip
            return response
        assert last is not None
        ep = cfg.endpoints[last_idx]
        error = ModelTimeout if last.kind == "timeout" else ModelUnavailable
        raise error(
            f"model server {ep.base_url} ({ep.model}) failed after {attempts} attempt(s): {last.message}",
            endpoint=ep.base_url,
            context={"model": ep.model, "status": last.status, "attempts": attempts,
                     "retry_after_s": last.retry_after},
        )  # fmt: skip

    def _timeout(self) -> httpx.Timeout:
        cfg = self.config
        return httpx.Timeout(cfg.request_timeout_s, connect=cfg.connect_timeout_s)

    def _order(self) -> list[int]:
        """Endpoint indexes for one call: round robin, endpoints in cool-down last."""
        n = len(self.config.endpoints)
        start, self._next = self._next, (self._next + 1) % n
        now = time.monotonic()
        rotated = [(start + k) % n for k in range(n)]
        return sorted(rotated, key=lambda i: self._state[i].failed_until > now)  # stable

    def _delay(self, idx: int, failures_here: int) -> float:
        """Seconds to wait before trying endpoint ``idx``: full-jitter backoff, at least its Retry-After."""
        cfg = self.config
        backoff = 0.0
        if failures_here:
            cap = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** (failures_here - 1))
            backoff = self._rng.uniform(0, cap)
        return max(backoff, self._state[idx].not_before - time.monotonic())

    def _note_failure(self, idx: int, failure: AttemptFailed) -> None:
        now = time.monotonic()
        state = self._state[idx]
        state.failed_until = now + self.config.breaker_cooldown_s
        if failure.retry_after is not None and failure.retry_after <= self.config.retry_after_max_s:
            state.not_before = now + failure.retry_after

    def _payload(self, ep: ModelEndpoint, messages_json: str, max_tokens: int | None) -> bytes:
        cfg = self.config
        body: dict[str, Any] = {
            "model": ep.model, "temperature": cfg.temperature, "top_p": cfg.top_p,
            "max_tokens": max_tokens if max_tokens is not None else cfg.max_tokens,
            "frequency_penalty": cfg.frequency_penalty, "stream": cfg.stream,
        }  # fmt: skip
        if cfg.stream:
            body["stream_options"] = {"include_usage": True}
        body.update({k: v for k, v in cfg.extra_body.items() if k != "messages"})
        head = json.dumps(body, ensure_ascii=False)
        return f'{head[:-1]}, "messages": {messages_json}}}'.encode()

    async def _attempt(
        self, idx: int, messages_json: str, max_tokens: int | None
    ) -> tuple[ChatReply, float | None, float]:
        """One request to endpoint ``idx`` inside one of its slots: (reply, ttft, slot wait)."""
        cfg = self.config
        ep = cfg.endpoints[idx]
        waited_from = time.monotonic()
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(cfg.slot_wait_timeout_s):
                    await stack.enter_async_context(self._limiters[idx].slot())
            except TimeoutError:
                raise ModelTimeout(
                    f"no free slot on {ep.base_url} ({ep.model}) within {cfg.slot_wait_timeout_s}s "
                    f"(max_in_flight={ep.max_in_flight})",
                    endpoint=ep.base_url, context={"model": ep.model},
                ) from None  # fmt: skip
            slot_wait = time.monotonic() - waited_from
            reply, ttft = await self._request(ep, self._payload(ep, messages_json, max_tokens))
            return reply, ttft, slot_wait

    async def _request(self, ep: ModelEndpoint, payload: bytes) -> tuple[ChatReply, float | None]:
        """POST once and read the reply; translate transport failures at this one boundary."""
        cfg = self.config
        headers = {"Content-Type": "application/json",
                   "Accept": "text/event-stream" if cfg.stream else "application/json"}  # fmt: skip
        if ep.api_key:
            headers["Authorization"] = f"Bearer {ep.api_key}"
        request = self._http.build_request(
            "POST", ep.chat_url, content=payload, headers=headers, timeout=self._timeout()
        )
        loop = asyncio.get_running_loop()
        sent = time.monotonic()
        end_at = loop.time() + cfg.request_timeout_s
        first_at = min(end_at, loop.time() + cfg.first_token_timeout_s) if cfg.stream else end_at
        reply = ChatReply(ep.base_url)
        ttft: float | None = None
        streamed = False
        try:
            async with asyncio.timeout_at(first_at) as deadline:
                response = await self._http.send(request, stream=True)
                try:
                    if response.status_code >= 400:
                        await self._raise_for_status(ep, response)
                    if "text/event-stream" in response.headers.get("content-type", ""):
                        streamed = True
                        async for line in response.aiter_lines():
                            if reply.feed_line(line) and ttft is None:
                                ttft = time.monotonic() - sent
                                deadline.reschedule(end_at)  # the first token is in: now the full budget
                            if reply.done:  # read on to the end so the connection is reused, but briefly
                                deadline.reschedule(min(end_at, loop.time() + _DRAIN_S))
                    else:  # a server that ignored stream=true still sends a valid reply
                        deadline.reschedule(end_at)
                        reply.feed_body(await response.aread())
                finally:
                    await response.aclose()  # mid-stream: drops the connection, the server sees it
        except (TimeoutError, httpx.TransportError) as exc:
            if not reply.done:  # after [DONE] the reply is whole; a lingering server costs a new connection
                raise self._failure(exc, past_first_token=ttft is not None or not cfg.stream) from exc
        if streamed:
            reply.finish_stream()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("model request done", extra={"endpoint": ep.base_url, "request_bytes": len(payload),
                                                      "total_s": round(time.monotonic() - sent, 3)})  # fmt: skip
        return reply, ttft

    def _failure(self, exc: Exception, *, past_first_token: bool) -> AttemptFailed:
        """The one table from transport errors and deadlines to retryable attempt failures."""
        cfg = self.config
        if isinstance(exc, TimeoutError):
            if past_first_token:
                return AttemptFailed("timeout", f"no complete reply within {cfg.request_timeout_s}s")
            limit = min(cfg.first_token_timeout_s, cfg.request_timeout_s)
            return AttemptFailed("timeout", f"no first token within {limit}s")
        if isinstance(exc, httpx.ConnectTimeout):
            return AttemptFailed("unavailable", f"connect timed out after {cfg.connect_timeout_s}s")
        if isinstance(exc, httpx.TimeoutException):
            return AttemptFailed("timeout", f"{type(exc).__name__}: no data within the timeout")
        if isinstance(exc, httpx.ConnectError):
            return AttemptFailed("unavailable", f"cannot connect: {exc or type(exc).__name__}")
        return AttemptFailed("unavailable", f"{type(exc).__name__}: {exc}")

    async def _raise_for_status(self, ep: ModelEndpoint, response: httpx.Response) -> None:
        status = response.status_code
        message = server_message(await response.aread())
        if status == 429 or status == 408 or status >= 500:
            kind: Literal["unavailable", "timeout"] = "timeout" if status in (408, 504) else "unavailable"
            raise AttemptFailed(kind, f"HTTP {status}: {message}", status=status,
                                 retry_after=retry_after(response.headers.get("retry-after")))  # fmt: skip
        raise ModelReplyError(
            f"model server {ep.base_url} refused the request (HTTP {status}): {message}",
            endpoint=ep.base_url, context={"model": ep.model, "status": status},
        )  # fmt: skip


__all__ = ["ModelClient", "ModelClientConfig", "ModelEndpoint", "ModelResponse"]
