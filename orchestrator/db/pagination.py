"""Opaque keyset cursors: a page ends at a row's sort key, the next page starts strictly after it.

Cursors are base64url JSON so clients treat them as tokens; they are not signed because they only
narrow a query that is already limited to the caller's tenant.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_

from orchestrator.errors import InvalidCursor

__all__ = [
    "Page",
    "decode_index_cursor",
    "decode_time_cursor",
    "encode_index_cursor",
    "encode_time_cursor",
    "newest_first",
    "time_page",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next page (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def _encode(payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, object]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page unchanged") from exc
    if not isinstance(payload, dict):
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page unchanged")
    return payload


def encode_time_cursor(created_at: dt.datetime, row_id: uuid.UUID) -> str:
    """The cursor after the row with this (created_at, id)."""
    return _encode({"t": created_at.isoformat(), "id": str(row_id)})


def decode_time_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """(created_at, id) from a cursor; raises ``InvalidCursor``."""
    payload = _decode(cursor)
    try:
        created_at = dt.datetime.fromisoformat(str(payload["t"]))
        row_id = uuid.UUID(str(payload["id"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page unchanged") from exc
    if created_at.tzinfo is None:
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page unchanged")
    return created_at, row_id


def encode_index_cursor(index: int) -> str:
    """The cursor after the step with this index."""
    return _encode({"i": index})


def decode_index_cursor(cursor: str) -> int:
    """The step index from a cursor; raises ``InvalidCursor``."""
    index = _decode(cursor).get("i")
    if not isinstance(index, int) or isinstance(index, bool) or not -(2**31) <= index < 2**31:
        raise InvalidCursor("invalid cursor: pass next_cursor from a previous page unchanged")
    return index


def newest_first(query: Select, entity: Any, *, cursor: str | None, limit: int) -> Select:
    """``query`` newest first by ``entity``'s (created_at, id), strictly after ``cursor``, one row
    more than ``limit``: that row only tells ``time_page`` a next page exists. Raises ``InvalidCursor``."""
    if cursor is not None:
        created_at, after_id = decode_time_cursor(cursor)
        query = query.where(tuple_(entity.created_at, entity.id) < tuple_(created_at, after_id))
    return query.order_by(entity.created_at.desc(), entity.id.desc()).limit(limit + 1)


def time_page(items: list[T], limit: int, row: Callable[[T], Any] | None = None) -> Page[T]:
    """The first ``limit`` of ``items`` (fetched by a ``newest_first`` query) and the next page's
    cursor; ``row`` finds the row with (created_at, id) in an item that wraps it."""
    if len(items) <= limit:
        return Page(items, None)
    last = items[limit - 1] if row is None else row(items[limit - 1])
    return Page(items[:limit], encode_time_cursor(last.created_at, last.id))
