"""The one logging setup of every PhoneFleet process, and the log context its lines carry.

``configure_logging(level, fmt)`` is called once at a process's start (``phonefleet …`` in
``orchestrator/cli``, and the phone processes the providers spawn): one handler on the root logger,
on stderr, with ``LogFormatter``. Every field a call passes in ``extra={…}`` is printed, and so is
every field bound with ``bind(**fields)``:

- ``text`` (the default): ``2026-01-02 03:04:05,678 WARNING worker.run.drive phone unreachable
  error="…" task_id=… device_id=…``: the message, then ``key=value`` for each field (the call's own
  first, then the bound ones), a value quoted as JSON when it holds a space, a quote or ``=``;
- ``json``: one JSON object per line, ``{"ts", "level", "logger", "message", …fields}``, an
  exception's traceback in the field ``exception``.

Fields named in ``REDACTED_FIELDS`` (or ending in one of ``REDACTED_SUFFIXES``) are printed as
``[redacted]``, whoever passed them, at any depth of a dict value. The level and format come from
the arguments, else ``PHONEFLEET_LOG_LEVEL`` / ``PHONEFLEET_LOG_FORMAT``, else ``INFO`` / ``text``.
At INFO and above, the per-request and start-up chatter of libraries (``QUIET_LOGGERS``) is kept to
warnings; at DEBUG everything is shown.

``bind(task_id=…)`` sets a context variable; ``asyncio.run`` and new tasks copy the context, so every
line a run logs (the agent loop, the driver, the lease store) carries the fields without passing them
around. The worker binds ``task_id`` (then ``device_id``, ``lease_id`` once leased), the pool manager
``device_id`` around its work on one device, the API ``request_id`` per request.

This module is in ``device_pool``, the bottom layer, because every layer logs through it: the virtual
phone, the driver and the providers may import nothing above ``device_pool``.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = [
    "FORMATS",
    "FORMAT_ENV",
    "LEVEL_ENV",
    "QUIET_LOGGERS",
    "REDACTED",
    "REDACTED_FIELDS",
    "REDACTED_SUFFIXES",
    "LogFormatter",
    "bind",
    "configure_logging",
    "current",
    "redact",
]

FORMAT_ENV = "PHONEFLEET_LOG_FORMAT"
LEVEL_ENV = "PHONEFLEET_LOG_LEVEL"
FORMATS = ("text", "json")

REDACTED = "[redacted]"
# Fields whose values are never printed (names compared in lower case): credentials, and what a
# user or the agent typed (it may be a password or a one-time code). Add a field here before
# logging a new secret under it; the vault's values will join this list.
REDACTED_FIELDS = frozenset(
    {
        "api_key",  # a PhoneFleet or model-server API key (pf_<prefix>_<secret>)
        "key",  # the same, under its short name
        "secret",
        "session_secret",  # signs dashboard login cookies
        "webhook_secret",  # the HMAC key of X-PhoneFleet-Signature
        "token",
        "metrics_token",
        "csrf_token",
        "password",
        "passphrase",
        "authorization",  # an Authorization header's value
        "cookie",
        "set_cookie",
        "text",  # text typed on a phone (Type actions, ADB Keyboard messages)
        "typed_text",
    }
)
# …and any field whose name ends in one of these (``model_api_key``, ``refresh_token``).
REDACTED_SUFFIXES = ("_api_key", "_secret", "_token", "_password")

# Libraries whose INFO lines say nothing an operator needs, silenced to WARNING at INFO and above:
# httpx/httpcore log every request a client makes (each poll of `phonefleet task wait`), alembic
# announces its plugins and its SQL dialect on every start (orchestrator/db/migrate.py logs what
# migrated instead), aioice every ICE candidate pair of the live view.
QUIET_LOGGERS = ("httpx", "httpcore", "alembic", "aioice", "aiortc", "websockets")

# An immutable default (B039): bind() always sets a new dict, never changes one in place.
_EMPTY: Mapping[str, str] = {}
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "phonefleet_log_context", default=_EMPTY
)

# What every LogRecord has (and what libraries add that is no field): the rest came from ``extra``.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12+
    "color_message",  # uvicorn's copy of its message with terminal colours
}


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (as strings; None is left out) to the log context for the ``with`` block and
    the tasks and ``asyncio.run`` loops started in it."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, str]:
    """The fields bound now."""
    return dict(_context.get())


def _secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in REDACTED_FIELDS or lowered.endswith(REDACTED_SUFFIXES)


def redact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with the values of secret names (``REDACTED_FIELDS``) replaced, in nested dicts too."""
    return {
        name: REDACTED if _secret(name) else (redact(value) if isinstance(value, Mapping) else value)
        for name, value in fields.items()
    }


def _text_value(value: Any) -> str:
    """``value`` as one token of a ``key=value`` line: a dict or list as compact JSON, and a value
    quoted (as a JSON string) when a space, a quote or ``=`` would split or blur it."""
    if isinstance(value, Mapping | list | tuple):
        try:
            text = json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
        except ValueError:  # a circular structure
            text = repr(value)
        specials = " \t"
    else:
        # A str subclass (a str-valued enum) as its value, not as its repr-like str().
        text = str.__str__(value) if isinstance(value, str) else str(value)
        specials = ' "='
    if not text or not text.isprintable() or any(c in text for c in specials):
        return json.dumps(text, ensure_ascii=False)
    return text


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, default=str)
    except ValueError:
        return repr(value)
    return value


class LogFormatter(logging.Formatter):
    """A line per record: ``text`` (message, then ``key=value`` fields) or ``json`` (one object)."""

    def __init__(self, fmt: str = "text") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.json = fmt == "json"

    @staticmethod
    def fields(record: logging.LogRecord) -> dict[str, Any]:
        """The record's ``extra`` fields, then the bound ones it does not set itself, redacted."""
        own = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")}
        bound = {k: v for k, v in _context.get().items() if k not in own}
        return redact({**own, **bound})

    def format(self, record: logging.LogRecord) -> str:
        if self.json:
            return self._json(record)
        line = super().format(record)
        fields = self.fields(record)
        if not fields:
            return line
        pairs = " ".join(f"{name}={_text_value(value)}" for name, value in fields.items())
        # The fields belong to the message's line, before any traceback below it.
        head, newline, rest = line.partition("\n")
        return f"{head} {pairs}{newline}{rest}"

    def _json(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "ts": ts.removesuffix("+00:00") + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in self.fields(record).items():
            out[name if name not in out else f"field_{name}"] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(out, default=str, ensure_ascii=False)
        except ValueError:  # a field holds a circular structure: its repr, and the line still goes out
            return json.dumps({k: _jsonable(v) for k, v in out.items()}, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):
    """Ours, so a second ``configure_logging`` replaces it instead of adding another."""


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("phonefleet").critical("uncaught exception", exc_info=(kind, value, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if issubclass(args.exc_type, SystemExit):
        return  # as threading's own hook: a thread's SystemExit ends it quietly
    logging.getLogger("phonefleet").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


_format = "text"


def log_format() -> str:
    """The format ``configure_logging`` set for this process: ``text`` (also before it ran) or ``json``."""
    return _format


def configure_logging(
    level: str | int | None = None, fmt: str | None = None, *, stream: TextIO | None = None
) -> None:
    """Log every record of this process through one ``LogFormatter`` handler on ``stream`` (stderr).

    ``level``: a name (``DEBUG`` … ``CRITICAL``) or number, else ``PHONEFLEET_LOG_LEVEL``, else INFO
    (an unknown name means INFO). ``fmt``: ``text`` or ``json``, else ``PHONEFLEET_LOG_FORMAT``, else
    ``text``; anything else is a ValueError. Calling it again replaces the handler.
    """
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "text").strip().lower()
    formatter = LogFormatter(fmt)
    if level is None:
        level = os.environ.get(LEVEL_ENV) or "INFO"
    if isinstance(level, str):
        level = logging.getLevelName(level.strip().upper())
        if not isinstance(level, int):
            level = logging.INFO
    global _format
    _format = fmt
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING if level >= logging.INFO else logging.NOTSET)
    # Python's warnings as log records, so a json log stays one object per line.
    logging.captureWarnings(True)
    if fmt == "json":
        # A crash's traceback is one record too, not lines of plain text in a json log.
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
