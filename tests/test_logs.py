"""The log format (``device_pool.logs``): every field printed, secrets never, bound context carried."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from device_pool.logs import REDACTED, LogFormatter, bind, current, redact
from tests.processes import REPO


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, dict[str, io.StringIO]]]:
    """A logger of this test's own writing through a text and a json ``LogFormatter`` handler."""
    logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    streams = {"text": io.StringIO(), "json": io.StringIO()}
    for fmt, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(LogFormatter(fmt))
        logger.addHandler(handler)
    yield logger, streams
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def _json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_text_prints_every_extra_field_as_key_value_after_the_message(capture) -> None:
    logger, streams = capture
    device = uuid.uuid4()
    logger.warning("phone unreachable", extra={"error": "connection refused", "device_id": device, "n": 3})
    line = streams["text"].getvalue().rstrip("\n")
    assert (
        f' WARNING {logger.name} phone unreachable error="connection refused" device_id={device} n=3' in line
    )
    assert "\n" not in line


def test_text_quotes_values_that_would_not_read_as_one_token(capture) -> None:
    logger, streams = capture
    logger.info(
        "x", extra={"empty": "", "eq": "a=b", "quote": 'say "hi"', "nl": "a\nb", "obj": {"k": [1, 2]}}
    )
    line = streams["text"].getvalue()
    assert 'empty="" eq="a=b" quote="say \\"hi\\"" nl="a\\nb" obj={"k":[1,2]}' in line
    assert line.count("\n") == 1


def test_json_is_one_object_per_line_with_the_fields_and_the_exception(capture) -> None:
    logger, streams = capture
    logger.info("plain", extra={"task_id": "t-1", "attempt": 2, "path": None})
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logger.exception("run_task gave up", extra={"error": "device_error"})
    lines = streams["json"].getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "INFO" and first["logger"] == logger.name and first["message"] == "plain"
    assert first["task_id"] == "t-1" and first["attempt"] == 2 and first["path"] is None
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert second["level"] == "ERROR" and second["error"] == "device_error"
    assert "RuntimeError: boom\nsecond line" in second["exception"] and "Traceback" in second["exception"]


def test_odd_values_still_make_one_line(capture) -> None:
    import enum

    class State(enum.StrEnum):
        IDLE = "idle"

    loop: list[Any] = []
    loop.append(loop)
    logger, streams = capture
    logger.info("odd", extra={"state": State.IDLE, "loop": {"self": loop}})
    (record,) = _json_lines(streams["json"])
    assert record["state"] == "idle" and record["loop"] == repr({"self": loop})
    assert "odd state=idle loop=" in streams["text"].getvalue()


def test_text_keeps_the_fields_on_the_message_line_above_the_traceback(capture) -> None:
    logger, streams = capture
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed", extra={"reason": "device_error"})
    first, *rest = streams["text"].getvalue().splitlines()
    assert first.endswith("failed reason=device_error")
    assert rest[0].startswith("Traceback") and rest[-1] == "ValueError: bad"


def test_secret_fields_are_redacted_in_both_formats(capture) -> None:
    logger, streams = capture
    secrets = {
        "api_key": "pf_abcd1234_s3cr3t", "token": "tok-s3cr3t", "webhook_secret": "whs3cr3t",
        "Authorization": "Bearer s3cr3t", "password": "hunter2", "text": "my pin is 1234",
        "model_api_key": "sk-s3cr3t", "refresh_token": "rt-s3cr3t",
    }  # fmt: skip
    logger.info("request", extra={**secrets, "headers": {"cookie": "pf_session=s3cr3t"}, "status": 200})
    text, obj = streams["text"].getvalue(), _json_lines(streams["json"])[0]
    for value in (*secrets.values(), "pf_session=s3cr3t", "hunter2"):
        assert value not in text and value not in json.dumps(obj)
    for name in secrets:
        assert obj[name] == REDACTED and f"{name}={REDACTED}" in text
    assert obj["headers"] == {"cookie": REDACTED} and obj["status"] == 200


def test_redact_leaves_ordinary_fields_alone() -> None:
    fields = {"device_id": "d", "error": "e", "keyboard": "k", "text_len": 3}
    assert redact(fields) == fields


def test_bound_fields_are_carried_and_an_explicit_extra_wins(capture) -> None:
    logger, streams = capture
    with bind(task_id="t-1", device_id=None):
        with bind(device_id="d-1", secret="s3cr3t"):
            assert current() == {"task_id": "t-1", "device_id": "d-1", "secret": "s3cr3t"}
            logger.info("inner", extra={"device_id": "serial:5555"})
        logger.info("outer")
    logger.info("after")
    inner, outer, after = _json_lines(streams["json"])
    assert inner["task_id"] == "t-1" and inner["device_id"] == "serial:5555" and inner["secret"] == REDACTED
    assert outer["task_id"] == "t-1" and "device_id" not in outer
    assert "task_id" not in after
    assert "inner device_id=serial:5555 task_id=t-1 secret=[redacted]" in streams["text"].getvalue()


def test_bound_fields_reach_tasks_and_new_event_loops(capture) -> None:
    logger, streams = capture

    async def step(n: int) -> None:
        with bind(step=n):
            await asyncio.sleep(0)  # another task runs meanwhile: each keeps its own fields
            logger.info("step")

    async def run() -> None:
        await asyncio.gather(step(1), step(2))

    with bind(task_id="t-9"):
        asyncio.run(run())
    records = _json_lines(streams["json"])
    assert sorted((r["task_id"], r["step"]) for r in records) == [("t-9", "1"), ("t-9", "2")]


def test_configure_logging_reads_the_environment_and_quiets_library_chatter() -> None:
    """In a process of its own: configure_logging changes the root logger and the excepthook."""
    script = (
        "import logging, warnings\n"
        "from device_pool.logs import configure_logging\n"
        "configure_logging()\n"
        "logging.getLogger('httpx').info('HTTP Request: GET http://x 200')\n"
        "logging.getLogger('alembic.runtime.migration').info('Context impl SQLiteImpl.')\n"
        "logging.getLogger('app').debug('hidden at INFO')\n"
        "logging.getLogger('app').info('shown', extra={'n': 1})\n"
        "warnings.warn('a warning')\n"
        "import threading\n"
        "thread = threading.Thread(target=lambda: 1 / 0, name='boom')\n"
        "thread.start(); thread.join()\n"
        "raise SystemExit(__import__('json').loads('{'))\n"
    )
    env = {"PHONEFLEET_LOG_FORMAT": "json", "PHONEFLEET_LOG_LEVEL": "info", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [r["message"] for r in records[:1]] == ["shown"] and records[0]["n"] == 1
    assert records[1]["logger"] == "py.warnings" and "a warning" in records[1]["message"]
    assert records[2]["message"] == "uncaught exception in thread boom"
    assert "ZeroDivisionError" in records[2]["exception"]
    assert records[3]["level"] == "CRITICAL" and "JSONDecodeError" in records[3]["exception"]
    assert len(records) == 4

    env["PHONEFLEET_LOG_LEVEL"] = "DEBUG"
    env["PHONEFLEET_LOG_FORMAT"] = "text"
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert "HTTP Request: GET http://x 200" in done.stderr and "hidden at INFO" in done.stderr
    assert "INFO app shown n=1" in done.stderr


def test_an_unknown_format_is_refused_by_the_command() -> None:
    env = {"PHONEFLEET_LOG_FORMAT": "yaml", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "migrate", "current"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "PHONEFLEET_LOG_FORMAT" in done.stderr and "yaml" in done.stderr
