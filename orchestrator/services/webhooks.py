"""Webhooks: signed POSTs of a task's events to its ``webhook_url``, retried with backoff, logged per delivery.

The pipeline (``docs/control-plane.md``, "Events and webhooks"): a state change writes an event
(the outbox) → ``WebhookRelay`` (``webhook_relay.py``) gives each wanted event of a task with a
``webhook_url`` one ``webhook_deliveries`` row → ``WebhookDeliverer`` claims due rows and POSTs them.
``run_webhooks`` drives both inside ``phonefleet pool``.

A POST carries the event as ``{id, type, task_id, created_at, payload}`` and the headers
``X-PhoneFleet-Event`` (type), ``X-PhoneFleet-Delivery`` (the row's id: the same on every retry),
``X-PhoneFleet-Timestamp`` (unix seconds of this attempt) and ``X-PhoneFleet-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by auth.webhook_secret>`` — for a delivery
to a tenant's subscription (``webhook_subscriptions.py``), keyed by that subscription's secret as it
is when the attempt is made. A 2xx answer
delivers it; anything else (another status, a timeout, a refused connection; redirects are not
followed) schedules the next attempt after ``backoff_s`` with ±20 % jitter, until ``max_attempts``
→ ``failed``. A target that resolves to a private address, where those are not allowed
(``webhook_targets.py``), is ``failed`` at once.

**No double sends between deliverers.** A claim is one transaction that moves due rows'
``next_attempt_at`` past the attempt's longest duration and counts the attempt (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so concurrent claimers take disjoint rows; SQLite: ``BEGIN IMMEDIATE``).
The result is written fenced on that attempt number. A deliverer that dies mid-attempt leaves its
row to be claimed again once that time passes: delivery is at least once, and receivers dedupe by
``X-PhoneFleet-Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import time
import uuid

import httpx
from sqlalchemy import select, update

from orchestrator.db import Event, WebhookDelivery, WebhookStatus, WebhookSubscription, utcnow
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.errors import DatabaseUnavailable
from orchestrator.notifier import EventSignal
from orchestrator.services.auth import Principal
from orchestrator.services.events import EventMessage
from orchestrator.services.tasks import load_task
from orchestrator.services.webhook_relay import WebhookRelay
from orchestrator.services.webhook_targets import TargetPolicy, TargetRefused
from orchestrator.settings import Settings, WebhookSettings

__all__ = [
    "DeliveryView",
    "WebhookDeliverer",
    "WebhookService",
    "retry_delay_s",
    "run_webhooks",
    "serve_webhooks",
    "sign",
    "webhook_body",
]

logger = logging.getLogger(__name__)

_CLAIM_MARGIN_S = 30.0  # beyond the attempt's timeout, before another deliverer may retry the row
_ERROR_SNIPPET = 200  # bytes of a non-2xx answer's body kept in last_error


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-PhoneFleet-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def webhook_body(message: EventMessage) -> bytes:
    """The POST body: the event as the events WebSocket sends it, compact JSON."""
    return json.dumps(message.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


@dataclasses.dataclass(frozen=True)
class DeliveryView:
    """A delivery row with its event's type, for the delivery log."""

    delivery: WebhookDelivery
    event_type: str


class WebhookService:
    """The delivery log of the caller's tenant's tasks (``GET /api/v1/tasks/{id}/webhook-deliveries``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, principal: Principal, task_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[DeliveryView]:
        """Newest first, ``limit`` at a time; raises ``TaskNotFound``, ``InvalidCursor``."""
        # Through events (indexed by task_id), then the delivery by event_id: both indexed.
        query = (
            select(WebhookDelivery, Event.type)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(Event.task_id == task_id, WebhookDelivery.subscription_id.is_(None))
        )
        query = newest_first(query, WebhookDelivery, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            await load_task(db_session, principal, task_id)
            rows = (await db_session.execute(query)).all()
        return time_page([DeliveryView(row[0], row[1]) for row in rows], limit, lambda view: view.delivery)


@dataclasses.dataclass(frozen=True)
class _Claim:
    id: uuid.UUID
    event_id: int
    url: str
    attempt: int
    subscription_id: uuid.UUID | None = None  # None: the task's own webhook_url (auth.webhook_secret)


@dataclasses.dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    final: bool = False  # no later attempt would do better (a refused target)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDeliverer:
    """Claims due deliveries and POSTs them (module docstring); several may run against one database."""

    def __init__(
        self,
        db: Database,
        *,
        dialect: str,
        secret: bytes,
        settings: WebhookSettings,
        client: httpx.AsyncClient,
    ) -> None:
        self.db = db
        self.is_sqlite = dialect == "sqlite"
        self.secret = secret
        self.settings = settings
        self.client = client

    async def deliver_due(self) -> int:
        """Claim up to ``concurrency`` due deliveries and attempt them at once; returns how many."""
        claims = await self.claim(self.settings.concurrency)
        if not claims:
            return 0
        messages = await self._events([c.event_id for c in claims])
        keys = await self._secrets({c.subscription_id for c in claims if c.subscription_id is not None})
        await asyncio.gather(
            *(
                self._attempt(c, messages.get(c.event_id),
                              self.secret if c.subscription_id is None else keys.get(c.subscription_id))
                for c in claims
            )
        )  # fmt: skip
        return len(claims)

    async def _secrets(self, subscription_ids: set[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """The subscriptions' signing secrets now (a rotation applies to retries too)."""
        if not subscription_ids:
            return {}
        async with self.db.transaction() as db_session:
            rows = await db_session.execute(
                select(WebhookSubscription.id, WebhookSubscription.secret).where(
                    WebhookSubscription.id.in_(subscription_ids)
                )
            )
            return {row.id: row.secret.encode() for row in rows}

    async def claim(self, limit: int) -> list[_Claim]:
        """Take up to ``limit`` due rows for one attempt each (see the module docstring)."""
        now = utcnow()
        busy_until = now + dt.timedelta(seconds=self.settings.timeout_s + _CLAIM_MARGIN_S)
        due = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == WebhookStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_id)
            .limit(limit)
        )
        async with self.db.transaction(write=True) as db_session:
            if self.is_sqlite:
                picked = list(await db_session.scalars(due))  # under BEGIN IMMEDIATE: no other writer
                if not picked:
                    return []
                target = WebhookDelivery.id.in_(picked)
            else:
                target = WebhookDelivery.id.in_(due.with_for_update(skip_locked=True))
            result = await db_session.execute(
                update(WebhookDelivery)
                .where(target, WebhookDelivery.status == WebhookStatus.PENDING)
                .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=busy_until)
                .returning(
                    WebhookDelivery.id,
                    WebhookDelivery.event_id,
                    WebhookDelivery.url,
                    WebhookDelivery.attempts,
                    WebhookDelivery.subscription_id,
                )
                .execution_options(synchronize_session=False)
            )
            return [
                _Claim(row.id, row.event_id, row.url, row.attempts, row.subscription_id) for row in result.all()
            ]

    async def _events(self, event_ids: list[int]) -> dict[int, EventMessage]:
        async with self.db.transaction() as db_session:
            rows = (
                await db_session.execute(
                    select(
                        Event.id, Event.tenant_id, Event.task_id, Event.type, Event.created_at, Event.payload
                    ).where(Event.id.in_(event_ids))
                )
            ).all()
        return {row.id: EventMessage.from_row(row) for row in rows}

    async def _attempt(self, claim: _Claim, message: EventMessage | None, secret: bytes | None) -> None:
        # Its event or its subscription was deleted (the row cascades away with it).
        if message is None or secret is None:
            return
        outcome = await self._post(claim, message, secret)
        try:
            await self._record(claim, outcome)
        except DatabaseUnavailable as exc:
            # The claim's time runs out and the row is attempted again: at least once.
            logger.warning(
                "webhook attempt not recorded", extra={"delivery_id": str(claim.id), "error": exc.message}
            )

    async def _post(self, claim: _Claim, message: EventMessage, secret: bytes) -> _Outcome:
        body = webhook_body(message)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "PhoneFleet-Webhooks/1",
            "X-PhoneFleet-Event": message.type,
            "X-PhoneFleet-Delivery": str(claim.id),
            "X-PhoneFleet-Timestamp": timestamp,
            "X-PhoneFleet-Signature": sign(secret, timestamp, body),
        }
        try:
            # A total bound: httpx's own timeouts are per read, so a trickling server could hold on.
            async with asyncio.timeout(self.settings.timeout_s):
                async with self.client.stream("POST", claim.url, content=body, headers=headers) as response:
                    if 200 <= response.status_code < 300:
                        return _Outcome(response.status_code, None)
                    snippet = b""
                    async for chunk in response.aiter_bytes():
                        snippet += chunk
                        if len(snippet) >= _ERROR_SNIPPET:
                            break
            text = snippet[:_ERROR_SNIPPET].decode(errors="replace").strip()
            return _Outcome(
                response.status_code, f"HTTP {response.status_code}" + (f": {text}" if text else "")
            )
        except TargetRefused as exc:
            return _Outcome(None, str(exc)[:500], final=True)
        except httpx.InvalidURL as exc:  # stored before this check existed, or a bug: never better later
            return _Outcome(None, f"invalid webhook_url: {exc}"[:500], final=True)
        except TimeoutError:
            return _Outcome(None, f"no answer within {self.settings.timeout_s:g} s")
        except (httpx.HTTPError, OSError) as exc:
            return _Outcome(None, f"{type(exc).__name__}: {exc}"[:500])

    async def _record(self, claim: _Claim, outcome: _Outcome) -> None:
        now = utcnow()
        values: dict[str, object] = {"last_status_code": outcome.status_code, "last_error": outcome.error}
        if outcome.ok:
            values |= {"status": WebhookStatus.DELIVERED, "delivered_at": now, "next_attempt_at": None}
        elif claim.attempt >= self.settings.max_attempts or outcome.final:
            values |= {"status": WebhookStatus.FAILED, "next_attempt_at": None}
        else:
            values["next_attempt_at"] = now + dt.timedelta(
                seconds=retry_delay_s(self.settings.backoff_s, claim.attempt)
            )
        async with self.db.transaction() as db_session:
            await db_session.execute(
                update(WebhookDelivery)
                # Fenced on this attempt: a deliverer whose claim ran out does not overwrite a later one.
                .where(
                    WebhookDelivery.id == claim.id,
                    WebhookDelivery.attempts == claim.attempt,
                    WebhookDelivery.status == WebhookStatus.PENDING,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        extra = {"delivery_id": str(claim.id), "event_id": claim.event_id, "attempt": claim.attempt,
                 "status_code": outcome.status_code}  # fmt: skip
        if outcome.ok:
            logger.info("webhook delivered", extra=extra)
        else:
            logger.warning("webhook attempt failed", extra={**extra, "error": outcome.error,
                           "final": values.get("status") == WebhookStatus.FAILED})  # fmt: skip


def retry_delay_s(schedule: list[float], attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1-based): ``schedule[attempt-1]`` (its last value
    repeats), times a jitter of 0.8-1.2 so receivers that came back are not hit by every retry at once."""
    return schedule[min(attempt, len(schedule)) - 1] * random.uniform(0.8, 1.2)


async def run_webhooks(
    relay: WebhookRelay,
    deliverer: WebhookDeliverer,
    stop: asyncio.Event,
    *,
    poll_s: float,
    signal: EventSignal | None = None,
) -> None:
    """Relay and deliver until ``stop`` is set: at once on a wake-up, else every ``poll_s``.

    A pass's error (the database down) is logged and the loop goes on; attempts in flight when
    ``stop`` is set finish first (each is bounded by the timeout).
    """
    while not stop.is_set():
        token = await signal.arm() if signal is not None else asyncio.Event()
        busy = False
        try:
            _, more = await relay.relay()
            sent = await deliverer.deliver_due()
            busy = more or sent >= deliverer.settings.concurrency
        except DatabaseUnavailable as exc:
            logger.warning("webhook pass failed", extra={"error": exc.message})
        except Exception:
            logger.exception("webhook pass failed")
        if busy:
            continue
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(token.wait())]
        try:
            await asyncio.wait(waits, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter


async def serve_webhooks(settings: Settings, db: Database, *, dialect: str, stop: asyncio.Event) -> None:
    """Relay and deliver webhooks for ``settings`` until ``stop`` is set (``phonefleet pool`` runs this)."""
    config = settings.webhooks
    signal = EventSignal(settings.redis_url)
    relay = WebhookRelay(db, dialect=dialect, event_types=config.events)
    try:
        # Private addresses refused unless allowed (webhook_targets.py); redirects never followed.
        transport = TargetPolicy.from_settings(settings).transport()
        async with httpx.AsyncClient(
            transport=transport, follow_redirects=False, timeout=config.timeout_s
        ) as client:
            deliverer = WebhookDeliverer(
                db, dialect=dialect, secret=settings.auth.webhook_secret.get_secret_value().encode(),
                settings=config, client=client,
            )  # fmt: skip
            await run_webhooks(relay, deliverer, stop, poll_s=config.poll_s, signal=signal)
    finally:
        await signal.close()
