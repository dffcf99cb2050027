"""Bodies of a task's webhook deliveries (``/api/v1/tasks/{id}/webhook-deliveries``) and of the
tenant's webhook subscriptions (``/api/v1/webhooks``)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.schemas.common import EXAMPLE_TIME
from orchestrator.db import WebhookStatus, WebhookSubscription
from orchestrator.services.webhook_subscriptions import SubscriptionSpec
from orchestrator.services.webhooks import DeliveryView

__all__ = ["SubscriptionCreate", "SubscriptionOut", "SubscriptionSecretOut", "WebhookDeliveryOut"]


class WebhookDeliveryOut(BaseModel):
    """One event's webhook delivery to the task's ``webhook_url``: its attempts so far."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a1c2e33-7d7b-4f1e-9f43-0c1f7a5b2d10", "event_id": 4711, "event_type": "task.status",
                    "url": "https://example.com/hooks/phonefleet", "status": "pending", "attempts": 2,
                    "last_status_code": 500, "last_error": "HTTP 500: oops", "next_attempt_at": EXAMPLE_TIME,
                    "delivered_at": None, "created_at": EXAMPLE_TIME,
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID = Field(description="Sent as X-PhoneFleet-Delivery; the same on every retry.")
    event_id: int = Field(description="The event's id (the body's `id`).")
    event_type: str
    url: str
    status: WebhookStatus = Field(description="pending (waiting for an attempt), delivered, failed (gave up).")
    attempts: int
    last_status_code: int | None = Field(description="The last attempt's HTTP status; null if none came.")
    last_error: str | None = Field(description="Why the last attempt failed (status and body start, or the error).")
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def from_view(cls, view: DeliveryView) -> WebhookDeliveryOut:
        d = view.delivery
        return cls(
            id=d.id, event_id=d.event_id, event_type=view.event_type, url=d.url, status=d.status,
            attempts=d.attempts, last_status_code=d.last_status_code, last_error=d.last_error,
            next_attempt_at=d.next_attempt_at, delivered_at=d.delivered_at, created_at=d.created_at,
        )  # fmt: skip


class SubscriptionCreate(SubscriptionSpec):
    """Subscribe ``url`` to events of your tenant's tasks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"url": "https://example.com/hooks/phonefleet", "events": ["task.status"]}]},
    )


class SubscriptionOut(BaseModel):
    """A webhook subscription, without its secret."""

    id: uuid.UUID
    url: str
    events: list[str]
    created_at: dt.datetime
    secret_rotated_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: WebhookSubscription) -> SubscriptionOut:
        return cls(id=row.id, url=row.url, events=list(row.events), created_at=row.created_at,
                   secret_rotated_at=row.secret_rotated_at)  # fmt: skip


class SubscriptionSecretOut(SubscriptionOut):
    """A subscription with its signing secret: only in the answers that create or rotate it."""

    secret: str = Field(description="Keys the HMAC-SHA256 of X-PhoneFleet-Signature; shown only this once.")
