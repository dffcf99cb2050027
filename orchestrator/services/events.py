"""The events hub: one reader of the ``events`` table per API process, fanned out to subscribers.

Every WebSocket of ``GET /api/v1/events`` is a ``Subscription`` of the process's ``EventHub``. The hub
polls the table (every ``poll_s``, and at once on an ``EventSignal`` wake-up: a commit in this
process, or a Redis message from another) for ids it has not read (``IdWindow``: after its highest
id, plus the lower ids still missing because their transactions had not committed) and hands each
row to the subscriptions of its tenant (and task, if one was asked for). One query per tick serves
every socket, whatever their number.

**Order.** An event is handed out only when no lower id is still missing, so each subscriber sees
ids in ascending order and "resume after the last id I got" skips nothing. The price: an id that
never commits (a rolled-back transaction) holds the events above it back for ``gap_s``.

**Resume** (``after``): a subscription is registered first (live events queue up from then), then
its replay reads the tenant's rows with ``after < id <= high`` that the hub has already handed out
or will never hand out (not held, not missing) — exactly the complement of what will still arrive
live, so nothing is sent twice or skipped.

**Bounded memory.** Each subscription buffers at most ``buffer`` events; a consumer that falls
further behind is ended with ``SlowConsumer`` (its socket is closed and it resumes with ``after``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from orchestrator.db import Event
from orchestrator.db.database import Database
from orchestrator.errors import DatabaseUnavailable
from orchestrator.notifier import EventSignal
from orchestrator.services.outbox import IdWindow, start_position

__all__ = ["EventHub", "EventMessage", "HubClosed", "SlowConsumer", "StreamEnded", "Subscription"]

logger = logging.getLogger(__name__)

_COLUMNS = (Event.id, Event.tenant_id, Event.task_id, Event.type, Event.created_at, Event.payload)
_RETRY_S = 1.0  # after a failed poll (database down)


@dataclass(frozen=True)
class EventMessage:
    """One event as subscribers (and webhooks) see it."""

    id: int
    tenant_id: uuid.UUID
    task_id: uuid.UUID | None
    type: str
    created_at: dt.datetime
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> EventMessage:
        return cls(row.id, row.tenant_id, row.task_id, row.type, row.created_at, dict(row.payload or {}))

    def to_json(self) -> dict[str, Any]:
        """``{id, type, task_id, created_at, payload}`` (the tenant is the caller's, so it is left out)."""
        return {
            "id": self.id,
            "type": self.type,
            "task_id": None if self.task_id is None else str(self.task_id),
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "payload": self.payload,
        }


class StreamEnded(Exception):
    """A subscription ended by the hub; ``str()`` says why."""


class SlowConsumer(StreamEnded):
    """The subscriber fell more than its buffer behind."""


class HubClosed(StreamEnded):
    """The process is shutting down."""


class Subscription:
    """A tenant's (optionally one task's) events: ``replay()`` first, then ``next()`` for live ones."""

    def __init__(
        self, hub: EventHub, tenant_id: uuid.UUID, task_id: uuid.UUID | None, after: int | None, buffer: int
    ) -> None:
        self.hub = hub
        self.tenant_id = tenant_id
        self.task_id = task_id
        self.after = after
        self.buffer = buffer
        # Set by the hub when it registers us: the live position and what it will still hand out.
        self.position = 0
        self._replay_high = 0
        self._replay_exclude: frozenset[int] = frozenset()
        self._items: deque[EventMessage] = deque()
        self._changed = asyncio.Event()
        self._ended: StreamEnded | None = None

    def wants(self, message: EventMessage) -> bool:
        if self.task_id is not None and message.task_id != self.task_id:
            return False
        return self.after is None or message.id > self.after

    def offer(self, message: EventMessage) -> None:
        """Queue a live event (the hub calls this); over ``buffer`` the subscription ends instead."""
        if self._ended is not None:
            return
        if len(self._items) >= self.buffer:
            self.end(SlowConsumer(f"too slow: more than {self.buffer} events waiting"))
            return
        self._items.append(message)
        self._changed.set()

    def end(self, reason: StreamEnded) -> None:
        """End the subscription; ``next()`` raises ``reason`` from now on."""
        if self._ended is None:
            self._ended = reason
            self._items.clear()
            self._changed.set()

    async def replay(self, page: int = 500) -> AsyncIterator[EventMessage]:
        """The stored events after ``after`` that will not arrive live, oldest first (none without ``after``)."""
        if self.after is None:
            return
        cursor = self.after
        while cursor < self._replay_high:
            query = select(*_COLUMNS).where(
                Event.tenant_id == self.tenant_id, Event.id > cursor, Event.id <= self._replay_high
            )
            if self.task_id is not None:
                query = query.where(Event.task_id == self.task_id)
            if self._replay_exclude:
                query = query.where(Event.id.not_in(sorted(self._replay_exclude)))
            async with self.hub.db.transaction() as db_session:
                rows = (await db_session.execute(query.order_by(Event.id).limit(page))).all()
            if not rows:
                return
            for row in rows:
                yield EventMessage.from_row(row)
            cursor = rows[-1].id

    async def next(self, timeout: float) -> EventMessage | None:
        """The next live event; None when ``timeout`` s pass without one. Raises ``StreamEnded``."""
        while True:
            if self._ended is not None:
                raise self._ended
            if self._items:
                return self._items.popleft()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                return None

    def close(self) -> None:
        """Unsubscribe (idempotent)."""
        self.hub.unsubscribe(self)


class EventHub:
    """One poller of the ``events`` table per process, shared by every subscription (module docstring)."""

    def __init__(
        self,
        db: Database,
        signal: EventSignal,
        *,
        poll_s: float = 0.25,
        gap_s: float = 5.0,
        batch: int = 500,
        buffer: int = 1000,
    ) -> None:
        self.db = db
        self.signal = signal
        self.poll_s = poll_s
        self.gap_s = gap_s
        self.batch = batch
        self.buffer = buffer
        self._subs: dict[uuid.UUID, set[Subscription]] = {}
        self._window: IdWindow | None = None
        self._held: dict[int, EventMessage] = {}  # read, waiting for a lower missing id
        self._runner: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subs.values())

    @property
    def high(self) -> int | None:
        """The highest event id read so far (None before the first subscriber started the hub)."""
        return None if self._window is None else self._window.high

    async def subscribe(
        self, tenant_id: uuid.UUID, *, task_id: uuid.UUID | None = None, after: int | None = None
    ) -> Subscription:
        """Register a subscriber; raises ``DatabaseUnavailable`` if the hub cannot start, ``HubClosed``."""
        window = await self._start()
        sub = Subscription(self, tenant_id, task_id, after, self.buffer)
        # No await from here to the registration: the snapshot and the live feed meet exactly.
        pending = frozenset(window.missing) | frozenset(self._held)
        sub._replay_high = window.high
        sub._replay_exclude = frozenset(i for i in pending if after is None or i > after)
        floor = min(pending, default=window.high + 1) - 1
        sub.position = floor if after is None else max(after, 0)
        self._subs.setdefault(tenant_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.tenant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.tenant_id]

    async def close(self) -> None:
        """Stop polling and end every subscription with ``HubClosed``."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.end(HubClosed("the server is shutting down"))
        self._subs.clear()

    async def _start(self) -> IdWindow:
        # Started by the first subscriber, so an API nobody streams from never polls.
        async with self._starting:
            if self._closed:
                raise HubClosed("the server is shutting down")
            if self._window is None:
                async with self.db.transaction() as db_session:
                    high, missing = await start_position(db_session, self.gap_s)
                self._window = IdWindow(high, self.gap_s, missing)
            if self._runner is None or self._runner.done():
                self._runner = asyncio.create_task(self._run(), name="events-hub")
            return self._window

    async def _run(self) -> None:
        while not self._closed:
            token = await self.signal.arm()
            try:
                more = await self.poll()
            except DatabaseUnavailable as exc:
                logger.warning("events hub cannot read the database", extra={"error": exc.message})
                await asyncio.sleep(_RETRY_S)
                continue
            except Exception:
                logger.exception("events hub poll failed")
                await asyncio.sleep(_RETRY_S)
                continue
            if more:
                continue
            assert self._window is not None
            due = self._window.next_deadline_s()
            await self.signal.wait(token, self.poll_s if due is None else min(self.poll_s, due + 0.01))

    async def poll(self) -> bool:
        """Read what is new, hand out what may go; True if there may be more to read at once."""
        window = self._window
        assert window is not None
        async with self.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(*_COLUMNS).where(window.unread()).order_by(Event.id).limit(self.batch)
                )
            ).all()
        fresh = set(window.observe(row.id for row in rows))
        for row in rows:
            if row.id in fresh:
                self._held[row.id] = EventMessage.from_row(row)
        window.expire()
        floor = window.floor()
        for event_id in sorted(i for i in self._held if floor is None or i < floor):
            self._dispatch(self._held.pop(event_id))
        return len(rows) == self.batch

    def _dispatch(self, message: EventMessage) -> None:
        for sub in list(self._subs.get(message.tenant_id, ())):
            if sub.wants(message):
                sub.offer(message)
