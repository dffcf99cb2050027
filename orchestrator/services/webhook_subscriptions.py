"""A tenant's webhook subscriptions: events of all its tasks, POSTed to a URL of its choosing.

A subscription is delivered in addition to a task's own ``webhook_url``, by the same relay and
deliverer (``webhook_relay.py``, ``webhooks.py``): one ``webhook_deliveries`` row per (event,
subscription), for events of the subscription's ``events`` types written after it was created,
signed the same way but with the subscription's own secret. The secret is shown once, when the
subscription is created or its secret rotated (the old one stops signing at once, retries
included). Every method is scoped to the caller's tenant: another tenant's id is not found.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select

from orchestrator.db import DbSession, Tenant, WebhookSubscription, utcnow
from orchestrator.db.database import Database
from orchestrator.errors import LimitReached, WebhookSubscriptionNotFound
from orchestrator.services.auth import Principal
from orchestrator.services.specs import WebhookUrl
from orchestrator.services.webhook_targets import TargetPolicy

__all__ = ["SUBSCRIBABLE_EVENTS", "SubscriptionService", "SubscriptionSpec", "new_secret"]

# The event types a subscription may name: a task's life, as its own webhook_url may get them.
SUBSCRIBABLE_EVENTS = (
    "task.created", "task.status", "task.step", "task.cancel_requested", "task.confirmation_requested",
    "task.takeover_requested", "task.question", "task.waiting", "task.retrying", "task.try_started",
    "task.subgoal",
)  # fmt: skip
_SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A subscription's signing secret: 256 random bits, prefixed so it is recognised when leaked."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


class SubscriptionSpec(BaseModel):
    """A subscription (``POST /api/v1/webhooks``)."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl = Field(description="The http(s) URL every matching event is POSTed to.")
    events: list[str] = Field(
        min_length=1,
        max_length=len(SUBSCRIBABLE_EVENTS),
        description=f'Event types to send, e.g. ["task.status"]; any of {", ".join(SUBSCRIBABLE_EVENTS)}.',
    )

    @field_validator("events", mode="after")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SUBSCRIBABLE_EVENTS))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(SUBSCRIBABLE_EVENTS)}")
        return list(dict.fromkeys(value))  # duplicates say nothing more


class SubscriptionService:
    """The caller's tenant's subscriptions; secrets are only returned by ``create`` and ``rotate_secret``."""

    def __init__(
        self, db: Database, *, webhook_targets: TargetPolicy | None = None, max_per_tenant: int = 10
    ) -> None:
        self.db = db
        self.webhook_targets = webhook_targets or TargetPolicy(allow_private=True)
        self.max_per_tenant = max_per_tenant  # settings.webhooks.max_subscriptions_per_tenant

    async def create(self, principal: Principal, spec: SubscriptionSpec) -> tuple[WebhookSubscription, str]:
        """A new subscription and its secret; raises ``WebhookTargetRefused`` (a private address
        where only public ones are allowed) and ``LimitReached`` (the tenant has
        ``webhooks.max_subscriptions_per_tenant``)."""
        url = str(spec.url)
        self.webhook_targets.check_url(url)
        secret = new_secret()
        row = WebhookSubscription(
            id=uuid.uuid4(), created_at=utcnow(), tenant_id=principal.tenant_id, url=url,
            events=spec.events, secret=secret,
        )  # fmt: skip
        async with self.db.transaction(write=True) as db_session:
            # The tenant's row, locked: two creations at once cannot both pass the limit.
            await db_session.scalar(
                select(Tenant.id).where(Tenant.id == principal.tenant_id).with_for_update()
            )
            count = await db_session.scalar(
                select(func.count())
                .select_from(WebhookSubscription)
                .where(WebhookSubscription.tenant_id == principal.tenant_id)
            )
            if (count or 0) >= self.max_per_tenant:
                raise LimitReached(
                    f"your tenant has {count} webhook subscriptions, the most it may have "
                    f"(webhooks.max_subscriptions_per_tenant = {self.max_per_tenant}); delete one first",
                    context={"limit": self.max_per_tenant},
                )
            db_session.add(row)
        return row, secret

    async def list(self, principal: Principal) -> list[WebhookSubscription]:
        """Every subscription of the tenant, newest first."""
        async with self.db.transaction() as db_session:
            rows = await db_session.scalars(
                select(WebhookSubscription)
                .where(WebhookSubscription.tenant_id == principal.tenant_id)
                .order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc())
            )
            return list(rows)

    async def get(self, principal: Principal, subscription_id: uuid.UUID) -> WebhookSubscription:
        async with self.db.transaction() as db_session:
            return await _load(db_session, principal, subscription_id)

    async def delete(self, principal: Principal, subscription_id: uuid.UUID) -> None:
        """Delete it; its pending deliveries go with it."""
        async with self.db.transaction(write=True) as db_session:
            row = await _load(db_session, principal, subscription_id)
            await db_session.execute(delete(WebhookSubscription).where(WebhookSubscription.id == row.id))

    async def rotate_secret(
        self, principal: Principal, subscription_id: uuid.UUID
    ) -> tuple[WebhookSubscription, str]:
        """A new secret, in force at once: every later POST (retries included) is signed with it."""
        secret = new_secret()
        async with self.db.transaction(write=True) as db_session:
            row = await _load(db_session, principal, subscription_id)
            row.secret, row.secret_rotated_at = secret, utcnow()
        return row, secret


async def _load(db_session: DbSession, principal: Principal, subscription_id: uuid.UUID) -> Any:
    row = await db_session.scalar(
        select(WebhookSubscription).where(
            WebhookSubscription.id == subscription_id, WebhookSubscription.tenant_id == principal.tenant_id
        )
    )
    if row is None:
        raise WebhookSubscriptionNotFound(subscription_id)
    return row
