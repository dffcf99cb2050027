"""The model client against real HTTP servers on 127.0.0.1 (``model_servers``) and the real Redis."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from PIL import Image, ImageDraw

from tests.conditions import GiveUp, wait_until
from tests.conftest import REDIS_URL
from tests.processes import REPO, stop_process
from tests.worker.agent.model_servers import Hang, ModelServer, Raw, Reply, Status, dead_url, serve
from worker.agent.errors import ModelReplyError, ModelTimeout, ModelUnavailable
from worker.agent.images import encode_screenshot, image_part
from worker.agent.model_client import ModelClient, ModelClientConfig, ModelEndpoint, ModelResponse
from worker.agent.model_limits import RedisSlots

HELLO = [{"role": "user", "content": "hi"}]


def config(*urls: str, **overrides: Any) -> ModelClientConfig:
    """A test config: fast backoff so retry tests take milliseconds, not seconds."""
    limit = overrides.pop("max_in_flight", 8)
    api_key = overrides.pop("api_key", None)
    endpoints = [ModelEndpoint(url, "test-model", api_key=api_key, max_in_flight=limit) for url in urls]
    opts: dict[str, Any] = {"backoff_base_s": 0.02, "backoff_max_s": 0.1} | overrides
    return ModelClientConfig(endpoints=endpoints, **opts)


def chat_once(cfg: ModelClientConfig) -> ModelResponse:
    async def go() -> ModelResponse:
        async with ModelClient(cfg) as client:
            return await client.chat(HELLO)

    return asyncio.run(go())


# --- retries and errors ---------------------------------------------------------------------------


def test_500_twice_then_success_is_retried() -> None:
    with serve(ModelServer(Status(500), Status(503))) as server:
        reply = chat_once(config(server.base_url))
    assert reply.attempts == 3
    assert len(server.requests) == 3
    assert reply.content == 'do(action="Tap", element=[500,500])'


def test_on_retry_hears_each_failure_that_another_attempt_follows() -> None:
    # What the worker shows as the task's model_unavailable wait: told before each retry, never
    # after the last attempt (the error says it then).
    heard: list[str] = []

    async def on_retry(failure: str) -> None:
        heard.append(failure)

    async def go(cfg: ModelClientConfig) -> ModelResponse:
        async with ModelClient(cfg) as client:
            return await client.chat(HELLO, on_retry=on_retry)

    with serve(ModelServer(Status(503, "overloaded"))) as server:
        reply = asyncio.run(go(config(server.base_url)))
    assert reply.attempts == 2 and len(heard) == 1 and "HTTP 503" in heard[0] and "overloaded" in heard[0], heard
    heard.clear()
    with serve(ModelServer(default=Status(500))) as server, pytest.raises(ModelUnavailable):
        asyncio.run(go(config(server.base_url, max_retries=2)))
    assert len(heard) == 2 and len(server.requests) == 3, heard


def test_429_waits_for_retry_after() -> None:
    with serve(ModelServer(Status(429, "slow down", headers={"Retry-After": "1"}))) as server:
        reply = chat_once(config(server.base_url))
    assert reply.attempts == 2
    gap = server.requests[1].at - server.requests[0].at
    assert gap >= 0.95, gap  # the Retry-After, not the 0.1 s backoff cap


def test_always_500_raises_unavailable_within_budget() -> None:
    with serve(ModelServer(default=Status(500, "engine dead"))) as server, pytest.raises(ModelUnavailable) as info:
        chat_once(config(server.base_url, max_retries=3))
    assert len(server.requests) == 4  # 1 + max_retries, then it gives up
    err = info.value
    assert err.retryable and err.endpoint == server.base_url
    assert err.context["status"] == 500 and err.context["attempts"] == 4
    assert "engine dead" in str(err)


def test_connection_refused_is_unavailable() -> None:
    url = dead_url()
    with pytest.raises(ModelUnavailable) as info:
        chat_once(config(url, connect_timeout_s=60))  # refused at once: no connect timeout runs out
    assert url in str(info.value) and "cannot connect" in str(info.value)
    assert info.value.context["attempts"] == 4 and "timeout" not in str(info.value)


def test_server_that_never_answers_times_out_by_the_deadline() -> None:
    with serve(ModelServer(default=Hang())) as server:
        started = time.monotonic()
        with pytest.raises(ModelTimeout) as info:
            chat_once(config(server.base_url, first_token_timeout_s=0.4, max_retries=1))
        elapsed = time.monotonic() - started
        assert "no first token within 0.4s" in str(info.value)
        assert elapsed >= 0.8, elapsed  # both attempts waited out their deadline
        assert len(server.requests) == 2 and info.value.context["attempts"] == 2
        # the client hung up on each attempt (the server would hang 60 s); the server saw both go
        wait_until(lambda: server.disconnects == 2, timeout=30, what="server saw both disconnects")


def test_non_streamed_request_times_out_by_request_timeout() -> None:
    with serve(ModelServer(default=Hang())) as server:
        with pytest.raises(ModelTimeout, match=r"no complete reply within 0\.3s"):
            chat_once(config(server.base_url, stream=False, request_timeout_s=0.3, max_retries=0))
        # the client hung up: it did not wait for the server's 60 s hang to end
        wait_until(lambda: server.disconnects == 1, timeout=30, what="server saw the client hang up")


@pytest.mark.parametrize(
    ("behaviour", "stream", "match"),
    [
        (Raw(b"<html>not json"), False, "not a JSON object"),
        (Raw(b'{"id": "x", "object": "chat.completion"}'), False, "no choices"),
        (Raw(b'{"choices": []}'), False, "no choices"),
        (Raw(b"data: {oops\n\n", "text/event-stream"), True, "not a JSON object"),
        (Raw(b'data: {"id": "x"}\n\ndata: [DONE]\n\n', "text/event-stream"), True, "without a single choice"),
        (
            Raw(b'data: {"error": {"message": "prompt too long", "code": 400}}\n\n', "text/event-stream"),
            True,
            "prompt too long",
        ),
    ],
)
def test_reply_that_is_not_a_completion_is_a_reply_error(behaviour: Raw, stream: bool, match: str) -> None:
    with serve(ModelServer(behaviour)) as server, pytest.raises(ModelReplyError, match=match):
        chat_once(config(server.base_url, stream=stream))
    assert len(server.requests) == 1  # retrying cannot fix it


@pytest.mark.parametrize("status", [400, 404])
def test_wrong_model_is_a_reply_error_without_retry(status: int) -> None:
    behaviour = Status(status, "The model `test-model` does not exist.")
    with serve(ModelServer(behaviour)) as server, pytest.raises(ModelReplyError) as info:
        chat_once(config(server.base_url))
    assert len(server.requests) == 1
    assert "does not exist" in str(info.value) and f"HTTP {status}" in str(info.value)
    assert not info.value.retryable and info.value.context["status"] == status


# --- replies --------------------------------------------------------------------------------------


def test_streamed_reply_is_assembled_with_usage_and_sampling_settings() -> None:
    content = (
        "<think>the Wi-Fi switch is on the right</think><answer>" + 'do(action="Tap", element=[870,312])'
    )
    behaviour = Reply(content=content, reasoning="thinking…", chunks=12, usage=(2048, 77))
    cfg = config("", api_key="sk-secret", extra_body={"skip_special_tokens": False})
    with serve(ModelServer(behaviour)) as server:
        cfg.endpoints[0] = ModelEndpoint(server.base_url, "test-model", api_key="sk-secret")
        reply = chat_once(cfg)
    assert reply.content == content and reply.reasoning_content == "thinking…"
    assert (reply.prompt_tokens, reply.completion_tokens, reply.usage_estimated) == (2048, 77, False)
    assert reply.finish_reason == "stop" and reply.attempts == 1 and reply.endpoint == server.base_url
    assert reply.time_to_first_token_s is not None and 0 < reply.time_to_first_token_s <= reply.total_s
    seen = server.requests[0]
    assert seen.headers["authorization"] == "Bearer sk-secret"
    body = seen.body
    assert body is not None and body["messages"] == HELLO and body["model"] == "test-model"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["frequency_penalty"], body["max_tokens"]) == (
        0.0,
        0.85,
        0.2,
        3000,
    )
    assert body["skip_special_tokens"] is False


def test_reply_without_usage_estimates_tokens() -> None:
    with serve(ModelServer(Reply(content="打开设置 then tap", usage=None))) as server:
        reply = chat_once(config(server.base_url))
    assert reply.usage_estimated and reply.prompt_tokens == 0
    assert reply.completion_tokens == 4 + 3  # 4 CJK characters + ceil(10 other chars / 4)


def test_non_streamed_mode() -> None:
    with serve(ModelServer(Reply(content='finish(message="done")'))) as server:
        reply = chat_once(config(server.base_url, stream=False))
    assert reply.content == 'finish(message="done")' and reply.completion_tokens == 56
    assert server.requests[0].body is not None and server.requests[0].body["stream"] is False
    assert "stream_options" not in server.requests[0].body


def test_connection_is_reused_between_streamed_replies() -> None:
    with serve(ModelServer()) as server:
        cfg = config(server.base_url)

        async def go() -> None:
            async with ModelClient(cfg) as client:
                for _ in range(3):
                    await client.chat(HELLO)

        asyncio.run(go())
    assert len({seen.client for seen in server.requests}) == 1


def test_server_lingering_after_done_does_not_hold_the_reply() -> None:
    with serve(ModelServer(Reply(content="ok", linger_s=60))) as server:
        reply = chat_once(config(server.base_url))
        assert reply.content == "ok" and reply.attempts == 1
        # the client left after [DONE], while the server still lingered: the response never completed
        wait_until(lambda: server.disconnects == 1, timeout=30, what="the client left before the linger ended")


def test_server_that_ignores_stream_is_still_read() -> None:
    with serve(ModelServer(Reply(content="ok", stream=False))) as server:
        assert chat_once(config(server.base_url)).content == "ok"


# --- failover --------------------------------------------------------------------------------------


def test_failover_from_dead_endpoint_then_it_is_tried_last() -> None:
    dead = dead_url()
    with serve(ModelServer()) as live:
        cfg = config(dead, live.base_url)

        async def go() -> list[ModelResponse]:
            async with ModelClient(cfg) as client:
                return [await client.chat(HELLO) for _ in range(4)]

        replies = asyncio.run(go())
    assert all(r.endpoint == live.base_url for r in replies)
    # the dead endpoint cost at most one attempt: afterwards the breaker puts it last
    assert sum(r.attempts for r in replies) <= len(replies) + 1


def test_failover_from_failing_server_spreads_and_recovers() -> None:
    with serve(ModelServer(default=Status(502))) as bad, serve(ModelServer()) as good:
        cfg = config(bad.base_url, good.base_url)

        async def go() -> list[ModelResponse]:
            async with ModelClient(cfg) as client:
                return [await client.chat(HELLO) for _ in range(4)]

        replies = asyncio.run(go())
    assert all(r.endpoint == good.base_url for r in replies)
    assert len(bad.requests) <= 1


# --- cancellation and the in-flight cap -----------------------------------------------------------


async def cancel_mid_stream(client: ModelClient, server: ModelServer) -> bool:
    """Start a long streamed chat, cancel it once tokens flow; whether the chat ended cancelled.

    A client that read on to the end would return a reply after ~60 s (LONG_STREAM) instead; the
    server's ``disconnected`` shows the response was cut short.
    """
    task = asyncio.create_task(client.chat(HELLO))
    assert await asyncio.to_thread(server.streaming.wait, 30), "the stream never started"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return task.cancelled()


LONG_STREAM = Reply(content="x" * 1200, chunks=1200, chunk_delay_s=0.05)  # ~60 s if not cancelled


def test_cancel_mid_stream_aborts_the_request_and_frees_the_slot() -> None:
    # A held slot would make the next chat wait out slot_wait_timeout_s and raise ModelTimeout.
    with serve(ModelServer(LONG_STREAM)) as server:
        cfg = config(server.base_url, max_in_flight=1, slot_wait_timeout_s=1.0)

        async def go() -> tuple[bool, ModelResponse]:
            async with ModelClient(cfg) as client:
                cancelled = await cancel_mid_stream(client, server)
                # the only slot is free again: this gets it at once
                return cancelled, await client.chat(HELLO)

        cancelled, after = asyncio.run(go())
        assert cancelled
        wait_until(lambda: server.disconnected.is_set(), timeout=30, what="server saw the client hang up")
    assert after.attempts == 1 and after.content


def test_cancel_mid_stream_releases_the_redis_slot(redis_prefix: str) -> None:
    with serve(ModelServer(LONG_STREAM)) as server:
        cfg = config(server.base_url, max_in_flight=1, redis_key_prefix=redis_prefix)

        async def go() -> tuple[bool, int]:
            r = aioredis.Redis.from_url(REDIS_URL)
            try:
                async with ModelClient(cfg, redis=r) as client:
                    cancelled = await cancel_mid_stream(client, server)
                    slots = RedisSlots(r, cfg.endpoints[0].name, 1, prefix=redis_prefix)
                    return cancelled, await slots.holders()
            finally:
                await r.aclose()

        cancelled, holders = asyncio.run(go())
        assert cancelled
        assert holders == 0
        wait_until(lambda: server.disconnected.is_set(), timeout=30, what="server saw the client hang up")


CHILD = """
import asyncio, json, sys
import redis.asyncio as aioredis
from worker.agent.model_client import ModelClient, ModelClientConfig, ModelEndpoint

REDIS_URL = sys.argv.pop()

async def main(url, prefix, n, limit, ttl):
    r = aioredis.Redis.from_url(REDIS_URL)
    cfg = ModelClientConfig([ModelEndpoint(url, "test-model", max_in_flight=int(limit))],
                            redis_key_prefix=prefix, slot_lease_ttl_s=float(ttl))
    async with ModelClient(cfg, redis=r) as client:
        replies = await asyncio.gather(*(client.chat([{"role": "user", "content": "hi"}]) for _ in range(int(n))))
    await r.aclose()
    print(json.dumps([reply.attempts for reply in replies]))

asyncio.run(main(*sys.argv[1:]))
"""


def start_child(url: str, prefix: str, n: int, limit: int, ttl: float = 30.0) -> subprocess.Popen:
    """A second worker process with its own ModelClient on the same Redis."""
    args = [sys.executable, "-c", CHILD, url, prefix, str(n), str(limit), str(ttl), REDIS_URL]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_requests(server: ModelServer, count: int, proc: subprocess.Popen) -> None:
    def seen() -> bool:
        if proc.poll() is not None:
            raise GiveUp(
                f"child exited with {proc.returncode}: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        return len(server.requests) >= count

    wait_until(seen, timeout=20, what=f"server saw {count} request(s)")


def test_redis_cap_holds_across_clients_and_processes(redis_prefix: str) -> None:
    with serve(ModelServer(default=Reply(first_delay_s=0.25))) as server:
        child = start_child(server.base_url, redis_prefix, n=3, limit=2)
        try:
            wait_for_requests(server, 1, child)
            cfg = config(server.base_url, max_in_flight=2, redis_key_prefix=redis_prefix)

            async def go() -> list[ModelResponse]:
                conns = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]  # as two processes would
                clients = [ModelClient(cfg, redis=conn) for conn in conns]
                try:
                    return await asyncio.gather(*(c.chat(HELLO) for c in clients for _ in range(3)))
                finally:
                    for client, conn in zip(clients, conns, strict=True):
                        await client.aclose()
                        await conn.aclose()

            replies = asyncio.run(go())
            out, err = child.communicate(timeout=30)
            assert child.returncode == 0, err.decode()
        finally:
            stop_process(child)
    assert json.loads(out) == [1, 1, 1]
    assert len(replies) == 6 and all(r.attempts == 1 for r in replies)
    assert len(server.requests) == 9
    assert server.max_in_flight == 2  # reached, never exceeded
    assert max(r.slot_wait_s for r in replies) > 0.1  # some really waited for a slot


def test_slot_of_a_killed_process_frees_itself_after_the_lease(redis_prefix: str) -> None:
    ttl = 3.0
    with serve(ModelServer(Hang(), default=Reply())) as server:
        child = start_child(server.base_url, redis_prefix, n=1, limit=1, ttl=ttl)
        try:
            wait_for_requests(server, 1, child)  # the child holds the only slot
        finally:
            child.kill()  # no finally, no release: only the lease can free the slot
            child.wait(10)
        # Nobody releases the slot: only its lease running out can free it. slot_wait_timeout_s only
        # guards against a hang (waiters re-check on their own at least every second).
        cfg = config(server.base_url, max_in_flight=1, redis_key_prefix=redis_prefix, slot_lease_ttl_s=ttl,
                     slot_wait_timeout_s=30)  # fmt: skip

        async def go() -> tuple[int, ModelResponse]:
            r = aioredis.Redis.from_url(REDIS_URL)
            try:
                async with ModelClient(cfg, redis=r) as client:
                    held = await RedisSlots(r, cfg.endpoints[0].name, 1, prefix=redis_prefix).holders()
                    return held, await client.chat(HELLO)
            finally:
                await r.aclose()

        held, reply = asyncio.run(go())
    assert held == 1  # the dead child still held the only slot when the chat began
    assert reply.attempts == 1 and reply.slot_wait_s > 0, reply.slot_wait_s
    assert len(server.requests) == 2


# --- screenshots -----------------------------------------------------------------------------------


def phone_screen() -> Image.Image:
    """A 1080x2400 RGBA screen: text rows, buttons, and a photo-like block (15%) as real screens have."""
    img = Image.new("RGBA", (1080, 2400), (250, 250, 250, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1080, 80), fill=(30, 30, 30, 255))
    for y in range(200, 2000, 90):
        draw.text((40, y), "Wi-Fi  Bluetooth  Display  Battery  Storage", fill=(20, 20, 20, 255))
        draw.rounded_rectangle((880, y - 10, 1040, y + 40), 20, fill=(60, 120, 220, 255))
    # blurred noise: photo-like detail that PNG cannot squeeze (pure noise would be unrealistically hard)
    photo = Image.frombytes("RGB", (270, 90), os.urandom(270 * 90 * 3)).resize(
        (1080, 360), Image.Resampling.BICUBIC
    )
    img.paste(photo, (0, 2040))
    return img


def test_encode_screenshot_fits_budget_and_beats_png() -> None:
    img = phone_screen()
    full_png = io.BytesIO()
    img.save(full_png, "PNG")
    encoded = encode_screenshot(img, max_pixels=1_000_000, fmt="jpeg", quality=80)
    assert encoded.width * encoded.height <= 1_000_000
    assert abs(encoded.width / encoded.height - 1080 / 2400) < 0.01
    assert encoded.bytes_len * 5 < len(full_png.getvalue()), (encoded.bytes_len, len(full_png.getvalue()))
    header, data = encoded.data_url.split(",", 1)
    assert header == "data:image/jpeg;base64"
    decoded = Image.open(io.BytesIO(base64.b64decode(data)))
    assert decoded.format == "JPEG" and decoded.size == (encoded.width, encoded.height)
    assert image_part(encoded) == {"type": "image_url", "image_url": {"url": encoded.data_url}}


def test_encode_screenshot_png_and_exact_budget() -> None:
    img = phone_screen()
    # 2 M px: an integer reduce would keep only a third of the budget, so it resizes exactly
    png = encode_screenshot(img, max_pixels=2_000_000, fmt="png")
    assert 1_900_000 <= png.width * png.height <= 2_000_000
    assert png.data_url.startswith("data:image/png;base64,")
    small = encode_screenshot(img.resize((540, 1200)), max_pixels=1_000_000)
    assert (small.width, small.height) == (540, 1200)  # within budget: untouched
