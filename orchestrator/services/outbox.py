"""Reading the ``events`` outbox in id order without skipping rows that commit out of order.

``events.id`` comes from a sequence when the row is INSERTed, not when its transaction commits. On
PostgreSQL two writers can take ids 10 and 11 and commit 11 first: a reader that saw 11 and moved
its position to "after 11" would never see 10. (SQLite has one writer at a time and AUTOINCREMENT
rolls back with the transaction, so its ids commit in order, dense; the same code costs it nothing.)

``IdWindow`` is one reader's position: ``high`` (the highest id read) plus ``missing``, the ids below
``high`` not read yet, each with a deadline. A reader asks for ``Event.id > high OR Event.id IN
missing``; a missing id that turns up is a late commit, one that does not turn up by its deadline
was rolled back (sequences do not roll back) and is given up. ``gap_s`` must exceed the longest time
a transaction holds an event row uncommitted (ours are milliseconds); an event committed later than
that is not streamed live (it stays in the table, and webhooks allow a longer window).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from orchestrator.db import DbSession, Event, utcnow

__all__ = ["MAX_MISSING", "IdWindow", "start_position"]

logger = logging.getLogger(__name__)

# A hole wider than this (a rolled-back bulk insert, a sequence jump) is not tracked id by id.
MAX_MISSING = 10_000
# How far back ``start_position`` looks for ids that may still be in flight.
_START_LOOKBACK_ROWS = 1000


class IdWindow:
    """Which event ids a reader has read, and which lower ones it still waits for."""

    def __init__(self, high: int, gap_s: float, missing: Iterable[int] = ()) -> None:
        self.high = high
        self.gap_s = gap_s
        now = time.monotonic()
        self.missing: dict[int, float] = {i: now + gap_s for i in missing if i < high}

    def unread(self) -> ColumnElement[bool]:
        """The WHERE clause for rows this reader has not read yet."""
        if not self.missing:
            return Event.id > self.high
        return or_(Event.id > self.high, Event.id.in_(sorted(self.missing)))

    def observe(self, ids: Iterable[int]) -> list[int]:
        """Record the ids one read returned (ascending or not); returns those that are new to us."""
        fresh = sorted(i for i in set(ids) if i > self.high or i in self.missing)
        deadline = time.monotonic() + self.gap_s
        for i in fresh:
            self.missing.pop(i, None)
        top = fresh[-1] if fresh else self.high
        if top > self.high:
            seen = set(fresh)
            start = self.high + 1
            if top - start > MAX_MISSING:
                logger.warning(
                    "event ids jumped; not waiting for the skipped ones",
                    extra={"from_id": self.high, "to_id": top},
                )
                start = top - MAX_MISSING
            for i in range(start, top):
                if i not in seen:
                    self.missing[i] = deadline
            self.high = top
        return fresh

    def expire(self) -> list[int]:
        """Give up the missing ids past their deadline; returns them."""
        now = time.monotonic()
        gone = [i for i, until in self.missing.items() if until <= now]
        for i in gone:
            del self.missing[i]
        if gone:
            logger.info("event ids never committed (rolled back); given up", extra={"ids": gone[:20]})
        return gone

    def floor(self) -> int | None:
        """The lowest id still awaited, or None."""
        return min(self.missing) if self.missing else None

    def next_deadline_s(self) -> float | None:
        """Seconds until the next missing id is given up, or None."""
        if not self.missing:
            return None
        return max(0.0, min(self.missing.values()) - time.monotonic())


async def start_position(db_session: DbSession, gap_s: float) -> tuple[int, list[int]]:
    """Where a new reader starts "from now": (the highest id, the lower ids that may still commit).

    Ids missing among rows created in the last ``gap_s`` seconds may belong to transactions still
    open; older holes are rollbacks. ``created_at`` is stamped just before the INSERT.
    """
    high = await db_session.scalar(select(func.max(Event.id)))
    if high is None:
        return 0, []
    since = utcnow().timestamp() - gap_s
    recent: list[Any] = list(
        (
            await db_session.execute(
                select(Event.id, Event.created_at).order_by(Event.id.desc()).limit(_START_LOOKBACK_ROWS)
            )
        ).all()
    )
    present = {row.id for row in recent}
    # Holes above the newest row older than the window may be transactions still open.
    older = [row.id for row in recent if row.created_at.timestamp() < since]
    boundary = max(older) if older else min(present) - 1
    boundary = max(boundary, int(high) - MAX_MISSING)
    return int(high), [i for i in range(boundary + 1, int(high)) if i not in present]
