"""The reference model over real HTTP: OpenAI shapes, streaming, errors, and scripted replay."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.processes import ReferenceModel
from tests.worker.reference_model.conftest import SCRIPT
from worker.agent.actions import Finish, Launch, Tap
from worker.agent.parser import parse_reply
from worker.reference_model.eval_solutions import LAUNCH_RETRIES


def sse_events(response: httpx.Response) -> list[Any]:
    """The decoded ``data:`` payloads of an SSE response; ``[DONE]`` stays a string."""
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return events


def test_models_and_health(client: httpx.Client, reference_model: ReferenceModel) -> None:
    body = client.get("/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["autoglm-phone-9b"]
    health = httpx.get(f"http://127.0.0.1:{reference_model.port}/healthz").json()
    assert health == {"status": "ok", "model": "autoglm-phone-9b", "mode": "rules", "family": "autoglm", "role": "agent"}


def test_hi_probe_answers_200_within_max_tokens(client: httpx.Client) -> None:
    """The upstream client's start-up probe: plain "Hi", max_tokens=5, no image."""
    r = client.post("/chat/completions", json={
        "model": "autoglm-phone-9b", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5,
    })  # fmt: skip
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] <= 5
    assert (
        body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_streaming_shape_with_usage(client: httpx.Client) -> None:
    request = {
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/chat/completions", json=request) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks, usage = events[:-2], events[-2]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.startswith("Hello")
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0


def test_streaming_without_usage_ends_with_stop_then_done(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    ) as r:
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in e for e in events[:-1])


def test_unknown_model_is_404_model_not_found(client: httpx.Client) -> None:
    r = client.post(
        "/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "model_not_found" and "gpt-4o" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "autoglm-phone-9b"}', "messages"),
        (b'{"messages": []}', "messages"),
        (b'{"messages": [{"role": "robot", "content": "Hi"}]}', "messages.0.role"),
        (b'{"messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}', "stream"),
        (b'{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0}', "max_tokens"),
        (b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}, '
         b'{"type": "text", "text": "Open Settings"}]}]}', "image_url"),
        (b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, '
         b'{"type": "text", "text": "Open Settings"}]}]}', "image_url"),
    ],
    ids=["bad-json", "not-object", "no-messages", "empty-messages", "bad-role", "stream-not-bool", "max-tokens-0",
         "remote-image", "undecodable-image"],
)  # fmt: skip
def test_malformed_requests_are_400_with_openai_error(
    client: httpx.Client, body: bytes, param: str | None
) -> None:
    r = client.post("/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "BadRequestError" and error["message"]
    assert error["param"] == param


def _assistant_turns(n: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Open Settings"}]
    for i in range(n):
        messages += [{"role": "assistant", "content": f"<think>t{i}</think><answer>do(action=\"Back\")</answer>"},
                     {"role": "user", "content": "** Screen Info **"}]  # fmt: skip
    return messages


def test_scripted_replay_by_step_index(scripted_model: ReferenceModel) -> None:
    with httpx.Client(base_url=scripted_model.base_url, timeout=10) as http:
        assert http.get("/models").json()["data"][0]["id"] == "scripted-glm"

        def reply(step: int, stream: bool) -> str:
            request = {"model": "scripted-glm", "messages": _assistant_turns(step), "stream": stream}
            if not stream:
                return http.post("/chat/completions", json=request).json()["choices"][0]["message"]["content"]
            with http.stream("POST", "/chat/completions", json=request) as r:
                return "".join(
                    e["choices"][0]["delta"].get("content", "") for e in sse_events(r)[:-1] if e["choices"]
                )

        first = parse_reply(reply(0, stream=True))
        assert first.action == Launch(app="Settings")
        assert reply(1, stream=False) == SCRIPT[1]  # a whole reply is returned as written
        assert parse_reply(reply(1, stream=True)).action == Tap(element=(500, 300))
        assert parse_reply(reply(2, stream=False)).action == Finish(message='done, "quoted", 完成')
        assert parse_reply(reply(0, stream=False)).action == Launch(app="Settings")  # stateless: step 0 again
        for step in (3, 7):
            assert parse_reply(reply(step, stream=True)).action == Finish(message="script ended")
        assert (
            http.post(
                "/chat/completions", json={"model": "autoglm-phone-9b", "messages": _assistant_turns(0)}
            ).status_code
            == 404
        )


def test_the_scripted_model_plays_the_matching_templates_solution(client: httpx.Client) -> None:
    """``model: "scripted"`` (evals): the task is matched to a built-in template and the reply is its
    solution's action for this step, whatever the server's own mode; an unknown task gets a finish."""

    def reply(task: str, earlier: list[str]) -> Any:
        messages = [{"role": "user", "content": task}, *({"role": "assistant", "content": t} for t in earlier)]
        body = client.post("/chat/completions", json={"model": "scripted", "messages": messages}).json()
        return parse_reply(body["choices"][0]["message"]["content"]).action

    assert reply("Turn on Bluetooth", []) == Launch(app="Settings")
    second = reply("Turn on Bluetooth", ['do(action="Launch", app="Settings")'])
    assert isinstance(second, Tap) and second.element == (884, 232)
    assert isinstance(reply("Turn on Bluetooth", ["a", "b"]), Finish)
    assert isinstance(reply("Paint the fence", []), Finish)


def test_the_scripted_model_sends_a_launch_again_while_another_app_is_in_front(client: httpx.Client) -> None:
    """After its ``Launch``, the scripted player reads the app the client reports in front: the
    launcher (the launch did not take) gets the ``Launch`` again, at most ``LAUNCH_RETRIES`` times;
    the app launched, or a name that tells nothing ("System Home"), gets the solution's next step."""

    def content(turns: list[str], front: str) -> str:
        messages = [{"role": "user", "content": "Turn on Bluetooth"}]
        for turn in turns:
            messages += [{"role": "assistant", "content": turn},
                         {"role": "user", "content": f'** Screen Info **\n\n{{"current_app": "{front}"}}'}]  # fmt: skip
        body = client.post("/chat/completions", json={"model": "scripted", "messages": messages}).json()
        return body["choices"][0]["message"]["content"]

    first = content([], "com.android.launcher3")
    assert parse_reply(first).action == Launch(app="Settings") and "step 1 of 3" in first
    again = content([first], "com.android.launcher3")
    assert parse_reply(again).action == Launch(app="Settings") and "again" in again
    assert isinstance(parse_reply(content([first, again], "Settings")).action, Tap)  # it took
    for front in ("Settings", "System Home"):
        assert isinstance(parse_reply(content([first], front)).action, Tap), front
    turns = [first]
    for _ in range(LAUNCH_RETRIES):
        turns.append(content(turns, "com.android.launcher3"))
    assert [parse_reply(t).action for t in turns] == [Launch(app="Settings")] * (LAUNCH_RETRIES + 1)
    assert isinstance(parse_reply(content(turns, "com.android.launcher3")).action, Tap)  # no more retries
