"""The webhook relay: ``events`` (the outbox) → ``webhook_deliveries`` rows, never losing one.

Why a relay that scans, and not delivery rows written in the event's own transaction: events are
written in many places (the API's task service, the worker, the sweeper, the lease store), and a
writer that forgot the delivery row would lose webhooks silently. The relay reads the table they all
share, so every event is considered, whoever wrote it.

Why it cannot lose one:

- **Out-of-order commits** (PostgreSQL): it reads ids through an ``IdWindow`` (``outbox.py``) with a
  generous ``gap_s`` (60 s): a lower id committed late is still read, and only ids that stay missing
  that long (rolled back) are given up.
- **Restarts** keep no position in memory: a starting relay begins at the oldest event that is owed a
  delivery (a wanted type, on a task with a ``webhook_url``, no delivery row yet) among those of the
  last ``max_age_s`` — so events written while no relay ran are delivered when one starts. Older
  ones are not: turning webhooks on must not replay a database's history at its integrators.
- **Subscriptions** (``webhook_subscriptions.py``): an event of a tenant with subscriptions also gets
  one row per subscription that names its type and existed when it was written, keyed the same way
  (no row yet for that event and subscription); a restarting relay begins early enough for those too.
- **Several relays** (one per ``phonefleet pool``) insert under one lock (PostgreSQL: a transaction
  advisory lock; SQLite: ``BEGIN IMMEDIATE``) and only for events with no delivery row yet, so an
  event gets exactly one delivery row however many relays see it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, Exists, exists, func, insert, select, text

from orchestrator.db import (
    DbSession,
    Event,
    Task,
    WebhookDelivery,
    WebhookStatus,
    WebhookSubscription,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.services.outbox import IdWindow, start_position
from orchestrator.services.webhook_subscriptions import SUBSCRIBABLE_EVENTS

__all__ = ["RELAY_LOCK", "WebhookRelay"]

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the relay's inserts ("pfwebhk" in ASCII).
RELAY_LOCK = 0x7066776562686B


class WebhookRelay:
    """Creates one ``webhook_deliveries`` row per wanted event of a task that has a ``webhook_url``,
    and one per subscription that wants it."""

    def __init__(
        self,
        db: Database,
        *,
        dialect: str,
        event_types: Iterable[str],
        gap_s: float = 60.0,
        max_age_s: float = 86400.0,
        batch: int = 1000,
    ) -> None:
        self.db = db
        self.is_sqlite = dialect == "sqlite"
        self.event_types = frozenset(event_types)  # for tasks' own webhook_url
        self.considered = self.event_types | frozenset(SUBSCRIBABLE_EVENTS)
        self.gap_s = gap_s
        self.max_age_s = max_age_s
        self.batch = batch
        self._window: IdWindow | None = None

    async def relay(self) -> tuple[int, bool]:
        """One pass: (delivery rows created, whether more events may be waiting to be read at once)."""
        window = self._window or await self._start()
        async with self.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(Event.id, Event.type, Event.task_id)
                    .where(window.unread())
                    .order_by(Event.id)
                    .limit(self.batch)
                )
            ).all()
        fresh = set(window.observe(row.id for row in rows))
        window.expire()
        wanted = [r.id for r in rows if r.id in fresh and r.task_id is not None and r.type in self.considered]
        created = await self._create(wanted) if wanted else 0
        return created, len(rows) == self.batch

    async def _create(self, event_ids: list[int]) -> int:
        now = utcnow()
        async with self.db.transaction(write=True) as db_session:
            if not self.is_sqlite:
                # Relays of other processes wait here, then see this one's rows: no event gets two.
                await db_session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK})
            owed = [
                (row.id, row.task_id, row.webhook_url, None)
                for row in await db_session.execute(
                    select(Event.id, Event.task_id, Task.webhook_url)
                    .join(Task, Task.id == Event.task_id)
                    .where(
                        Event.id.in_(event_ids),
                        Event.type.in_(sorted(self.event_types)),
                        Task.webhook_url.is_not(None),
                        ~_has_delivery(),
                    )
                    .order_by(Event.id)
                )
            ]
            owed += [
                (row.id, row.task_id, row.url, row.subscription_id)
                for row in await db_session.execute(
                    select(
                        Event.id,
                        Event.task_id,
                        Event.type,
                        WebhookSubscription.url,
                        WebhookSubscription.events,
                        WebhookSubscription.id.label("subscription_id"),
                    )
                    .join(WebhookSubscription, WebhookSubscription.tenant_id == Event.tenant_id)
                    .where(Event.id.in_(event_ids), *_owed_to_subscription())
                    .order_by(Event.id, WebhookSubscription.created_at)
                )
                if row.type in row.events
            ]
            if owed:
                await db_session.execute(
                    insert(WebhookDelivery),
                    [
                        {
                            "id": uuid.uuid4(),
                            "created_at": now,
                            "event_id": event_id,
                            "task_id": task_id,
                            "subscription_id": subscription_id,
                            "url": url,
                            "status": WebhookStatus.PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                        }
                        for event_id, task_id, url, subscription_id in owed
                    ],
                )
        if owed:
            logger.info("webhook deliveries queued", extra={"count": len(owed), "first_event_id": owed[0][0]})
        return len(owed)

    async def _start(self) -> IdWindow:
        async with self.db.transaction() as db_session:
            high, missing = await start_position(db_session, self.gap_s)
            since_id = await _first_id_since(db_session, utcnow() - dt.timedelta(seconds=self.max_age_s))
            oldest_owed = None
            if since_id is not None and self.event_types:
                oldest_owed = await db_session.scalar(
                    select(func.min(Event.id))
                    .join(Task, Task.id == Event.task_id)
                    .where(
                        Event.id >= since_id,
                        Event.type.in_(sorted(self.event_types)),
                        Task.webhook_url.is_not(None),
                        ~_has_delivery(),
                    )
                )
            if since_id is not None:
                # The same for subscriptions (any subscribable type: an overestimate re-reads more).
                oldest_sub = await db_session.scalar(
                    select(func.min(Event.id))
                    .join(WebhookSubscription, WebhookSubscription.tenant_id == Event.tenant_id)
                    .where(
                        Event.id >= since_id, Event.type.in_(SUBSCRIBABLE_EVENTS), *_owed_to_subscription()
                    )
                )
                if oldest_sub is not None:
                    oldest_owed = oldest_sub if oldest_owed is None else min(oldest_owed, oldest_sub)
        if oldest_owed is not None and oldest_owed <= high:
            # Re-read from there; holes found on the way are waited for like any other.
            self._window = IdWindow(oldest_owed - 1, self.gap_s)
        else:
            self._window = IdWindow(high, self.gap_s, missing)
        logger.info(
            "webhook relay started", extra={"after_id": self._window.high, "oldest_owed": oldest_owed}
        )
        return self._window


def _has_delivery() -> Exists:
    """The event has its delivery to its task's own webhook_url."""
    return exists().where(WebhookDelivery.event_id == Event.id, WebhookDelivery.subscription_id.is_(None))


def _owed_to_subscription() -> tuple[ColumnElement[bool], ...]:
    """Conditions on (Event, WebhookSubscription): written since it exists, and not delivered to it yet."""
    return (
        WebhookSubscription.created_at <= Event.created_at,
        ~exists().where(
            WebhookDelivery.event_id == Event.id, WebhookDelivery.subscription_id == WebhookSubscription.id
        ),
    )


async def _first_id_since(db_session: DbSession, since: dt.datetime) -> int | None:
    """The lowest event id created at or after ``since`` (None if none), by bisecting the primary key.

    ``events`` has no index on ``created_at``, but ids are taken in time order (``created_at`` is
    stamped just before the INSERT), so ~log2(rows) primary-key probes find the boundary.
    """
    bounds = (await db_session.execute(select(func.min(Event.id), func.max(Event.id)))).one()
    lo, hi = bounds[0], bounds[1]
    if lo is None:
        return None
    found: int | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        row = (
            await db_session.execute(
                select(Event.id, Event.created_at).where(Event.id >= mid).order_by(Event.id).limit(1)
            )
        ).first()
        if row is None:
            break
        if row.created_at >= since:
            found, hi = row.id, mid - 1
        else:
            lo = row.id + 1
    return found
