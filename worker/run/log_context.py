"""Log context for a session: fields bound once at the Celery task's start, stamped on every record.

``bind(task_id=…)`` sets a context variable; ``asyncio.run`` copies the context into the session's
loop, so every line the session logs (the agent loop, the driver, the lease store) carries the
fields without passing them around. ``LogContextFilter`` (installed on the handlers by the entry
point) copies them onto each record, with ``-`` for fields not bound, so a format string may name them.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CONTEXT_FIELDS", "LogContextFilter", "bind", "current"]

CONTEXT_FIELDS = ("task_id", "device_id", "lease_id")

# An immutable default (B039): bind() always sets a new dict, never changes one in place.
_EMPTY: dict[str, Any] = {}
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "phonefleet_log_context", default=_EMPTY
)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to the log context for the ``with`` block (and the tasks it starts)."""
    token = _context.set({**_context.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, Any]:
    """The fields bound now."""
    return dict(_context.get())


class LogContextFilter(logging.Filter):
    """Stamps the bound fields onto each record (an explicit ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, bound.get(name, "-"))
        return True
