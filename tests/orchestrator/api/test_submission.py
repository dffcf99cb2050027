"""The submission fast path (``api/submission.py``) answers exactly as the FastAPI route does.

Two APIs on one database and one Redis, one with ``api.submit_fast_path`` on (the default) and one
with it off, get the same requests from the same keys, and their answers are compared: successes,
replays, conflicts, rate limiting, every malformed submission of ``test_bad_input``, and the bodies
the HTTP edges refuse (``api/edges.py``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.orchestrator.api.conftest import Api, StartApi
from tests.orchestrator.api.test_bad_input import BAD_REQUESTS

_SUBMIT = "/api/v1/tasks"
# Per-task values: the same request makes a different task on each API.
_PER_TASK = ("id", "created_at", "steps_url")


@pytest.fixture
def pair(start_api: StartApi, migrated_pg_url: str) -> tuple[Api, Api]:
    """(the API with the fast path, the API with only the route), sharing the database and Redis."""
    return start_api(migrated_pg_url), start_api(migrated_pg_url, api={"submit_fast_path": False})


def _clients(pair: tuple[Api, Api], key: str | None) -> tuple[httpx.Client, httpx.Client]:
    fast, route = pair
    return fast.client(key), route.client(key)


def _answer(r: httpx.Response) -> tuple[int, Any, dict[str, str | None]]:
    """What a caller sees: status, JSON body (task fields that differ per task removed), headers."""
    body = r.json()
    if isinstance(body, dict) and "steps_url" in body:
        body = {k: v for k, v in body.items() if k not in _PER_TASK}
        if body.get("waiting"):  # its since is the task's created_at
            body["waiting"] = {k: v for k, v in body["waiting"].items() if k != "since"}
    names = ("content-type", "retry-after", "www-authenticate", "idempotent-replayed")
    return r.status_code, body, {name: r.headers.get(name) for name in names}


def test_a_submission_answers_as_the_route_and_as_a_read_of_the_task(pair: tuple[Api, Api]) -> None:
    fast_api, _ = pair
    caller = fast_api.caller()
    fast, route = _clients(pair, caller.key)
    body = {
        "instruction": "Open Settings and turn on Wi-Fi",
        "device_profile": {"android": 13},
        "max_steps": 12,
        "webhook_url": "https://example.com/hook",
        "metadata": {"ticket": "OPS-1", "n": [1, 2.5, None, True]},
    }
    by_fast, by_route = fast.post(_SUBMIT, json=body), route.post(_SUBMIT, json=body)
    assert by_fast.status_code == 202, by_fast.text
    assert _answer(by_fast) == _answer(by_route)
    # The whole body, id and time included, is what FastAPI's own serialisation of the task gives.
    task_id = by_fast.json()["id"]
    assert by_fast.json() == route.get(f"{_SUBMIT}/{task_id}").json()
    assert set(by_fast.headers) >= {"content-length", "content-type"}
    assert int(by_fast.headers["content-length"]) == len(by_fast.content)
    # And it is a real submission: the row, and the worker's message.
    queued = [m["args"] for m in fast_api.queued_messages()]
    assert [task_id] in queued and [by_route.json()["id"]] in queued


def test_a_replayed_idempotency_key_answers_byte_for_byte_as_the_route(pair: tuple[Api, Api]) -> None:
    caller = pair[0].caller()
    fast, route = _clients(pair, caller.key)
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = fast.post(_SUBMIT, json={"instruction": "order a latte"}, headers=key)
    assert first.status_code == 202, first.text
    replays = [
        client.post(_SUBMIT, json={"instruction": "order a latte"}, headers=key) for client in (fast, route)
    ]
    for replay in replays:
        assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true", replay.text
        assert replay.json()["id"] == first.json()["id"]
    assert replays[0].content == replays[1].content
    conflicts = [
        client.post(_SUBMIT, json={"instruction": "order tea"}, headers=key) for client in (fast, route)
    ]
    assert conflicts[0].status_code == 409 and conflicts[0].json()["error"] == "idempotency_conflict"
    assert conflicts[0].content == conflicts[1].content


def test_malformed_submissions_answer_exactly_as_the_route(pair: tuple[Api, Api]) -> None:
    caller = pair[0].caller()
    fast, route = _clients(pair, caller.key)
    submissions = [kwargs for method, path, kwargs in BAD_REQUESTS if (method, path) == ("POST", _SUBMIT)]
    assert len(submissions) > 20
    for kwargs in submissions:
        by_fast, by_route = fast.post(_SUBMIT, **kwargs), route.post(_SUBMIT, **kwargs)
        assert 400 <= by_fast.status_code < 500, (str(kwargs)[:80], by_fast.text[:200])
        assert _answer(by_fast) == _answer(by_route), str(kwargs)[:80]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Authorization at all
        {"Authorization": "Bearer pf_00000000_nope"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer pf_" + "a" * 5000},
    ],
    ids=["none", "unknown", "basic", "empty", "huge"],
)
def test_bad_credentials_answer_exactly_as_the_route(pair: tuple[Api, Api], headers: dict[str, str]) -> None:
    fast, route = _clients(pair, None)
    answers = [client.post(_SUBMIT, json={"instruction": "x"}, headers=headers) for client in (fast, route)]
    assert answers[0].status_code == 401, answers[0].text
    assert _answer(answers[0]) == _answer(answers[1])


def test_a_revoked_key_answers_exactly_as_the_route(pair: tuple[Api, Api]) -> None:
    revoked = pair[0].caller(revoked=True)
    fast, route = _clients(pair, revoked.key)
    answers = [client.post(_SUBMIT, json={"instruction": "x"}) for client in (fast, route)]
    assert answers[0].status_code == 401 and "revoked" in answers[0].json()["message"]
    assert _answer(answers[0]) == _answer(answers[1])


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json", "text/plain", None],
)
def test_content_types_answer_as_the_route(pair: tuple[Api, Api], content_type: str | None) -> None:
    caller = pair[0].caller()
    fast, route = _clients(pair, caller.key)
    body = json.dumps({"instruction": "x"}).encode()
    headers = {} if content_type is None else {"Content-Type": content_type}
    answers = [client.post(_SUBMIT, content=body, headers=headers) for client in (fast, route)]
    assert _answer(answers[0]) == _answer(answers[1]), content_type


def test_a_chunked_body_answers_as_the_route(pair: tuple[Api, Api]) -> None:
    """No Content-Length: the fast path leaves it to the route (and its body limit)."""
    caller = pair[0].caller()
    fast, route = _clients(pair, caller.key)

    def chunks() -> Iterator[bytes]:
        yield b'{"instruction": '
        yield b'"sent in pieces"}'

    headers = {"Content-Type": "application/json"}
    answers = [client.post(_SUBMIT, content=chunks(), headers=headers) for client in (fast, route)]
    assert answers[0].status_code == 202, answers[0].text
    assert _answer(answers[0]) == _answer(answers[1])


def test_rate_limited_submissions_answer_as_the_route(start_api: StartApi, migrated_pg_url: str) -> None:
    """The service's own errors (raised after the checks) go through the one error table, api/errors.py."""
    limits = {"rate_limit_per_s": 0.01, "rate_limit_burst": 1}
    fast_api = start_api(migrated_pg_url, auth=limits)
    route_api = start_api(migrated_pg_url, auth=limits, api={"submit_fast_path": False})
    caller = fast_api.caller()
    fast, route = fast_api.client(caller.key), route_api.client(caller.key)
    assert fast.post(_SUBMIT, json={"instruction": "the one token"}).status_code == 202
    answers = [client.post(_SUBMIT, json={"instruction": "one more"}) for client in (fast, route)]
    assert answers[0].status_code == 429, answers[0].text
    assert answers[0].json() == answers[1].json()
    assert int(answers[0].headers["retry-after"]) >= 1 and int(answers[1].headers["retry-after"]) >= 1


def test_repeated_headers_are_read_as_the_route_reads_them(pair: tuple[Api, Api]) -> None:
    """The first copy counts, even an empty one (Starlette's ``Headers.get``)."""
    caller = pair[0].caller()
    fast, route = _clients(pair, None)
    bearer = f"Bearer {caller.key}"
    body = json.dumps({"instruction": "x"}).encode()
    cases = [
        [("Authorization", ""), ("Authorization", bearer), ("Content-Type", "application/json")],
        [("Authorization", bearer), ("Content-Type", ""), ("Content-Type", "application/json")],
        [("Authorization", bearer), ("Content-Type", "application/json"), ("Idempotency-Key", ""),
         ("Idempotency-Key", "fine")],
    ]  # fmt: skip
    for headers in cases:
        answers = [client.post(_SUBMIT, content=body, headers=headers) for client in (fast, route)]
        assert answers[0].status_code in (401, 422), (headers, answers[0].text)
        assert _answer(answers[0]) == _answer(answers[1]), headers


def test_a_bad_key_wins_over_a_bad_body_as_in_the_route(pair: tuple[Api, Api]) -> None:
    """FastAPI parses the body, then authenticates, then validates: 400 for broken JSON, else 401."""
    fast, route = _clients(pair, "pf_00000000_unknown")
    for kwargs, status, code in (
        ({"json": {"instruction": ""}}, 401, "unauthenticated"),
        ({"content": b"{broken", "headers": {"Content-Type": "application/json"}}, 400, "invalid_json"),
    ):
        answers = [client.post(_SUBMIT, **kwargs) for client in (fast, route)]
        assert (answers[0].status_code, answers[0].json()["error"]) == (status, code), answers[0].text
        assert _answer(answers[0]) == _answer(answers[1]), kwargs


def test_bodies_refused_at_the_edges_answer_as_the_route(pair: tuple[Api, Api]) -> None:
    """Broken or too deeply nested JSON (400), a body over the limit with or without Content-Length
    (413): the same status, code and message from both APIs (api/edges.py, api/errors.py)."""
    caller = pair[0].caller()
    fast, route = _clients(pair, caller.key)
    big = json.dumps({"instruction": "x", "metadata": {"big": "z" * 300_000}}).encode()

    def chunked() -> Iterator[bytes]:
        yield big[:150_000]
        yield big[150_000:]

    cases = [
        (b"{broken", 400, "invalid_json"),
        (b'{"instruction": "x", "metadata": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}", 400, "invalid_json"),
        (b'{"instruction": "\xff"}', 400, "invalid_json"),  # not UTF-8
        (big, 413, "payload_too_large"),
        (None, 413, "payload_too_large"),  # the same body, chunked
    ]
    headers = {"Content-Type": "application/json"}
    for body, status, code in cases:
        answers = [
            client.post(_SUBMIT, content=chunked() if body is None else body, headers=headers)
            for client in (fast, route)
        ]
        assert (answers[0].status_code, answers[0].json()["error"]) == (status, code), answers[0].text[:200]
        assert _answer(answers[0]) == _answer(answers[1]), (body or b"chunked")[:40]
