"""``/api/v1/webhooks``: the tenant's webhook subscriptions (admin routes; docs/api.md, "Webhook subscriptions")."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from orchestrator.api.deps import AdminOnly, CurrentPrincipal, SubscriptionServiceDep
from orchestrator.api.schemas import ErrorOut, SubscriptionCreate, SubscriptionOut, SubscriptionSecretOut

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "Not an admin key"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such subscription in your tenant"}
}

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhook subscriptions (admin)"], dependencies=[AdminOnly],
                   responses=_ERRORS)  # fmt: skip


@router.post("", status_code=201, summary="Subscribe a URL to your tenant's task events")
async def create_subscription(
    body: SubscriptionCreate, principal: CurrentPrincipal, subscriptions: SubscriptionServiceDep
) -> SubscriptionSecretOut:
    """Events of the named types, of every task of your tenant, are POSTed to `url`, signed with
    the subscription's `secret` — shown only in this answer and in a rotation's."""
    row, secret = await subscriptions.create(principal, body)
    return SubscriptionSecretOut(**SubscriptionOut.from_row(row).model_dump(), secret=secret)


@router.get("", summary="List your tenant's subscriptions")
async def list_subscriptions(
    principal: CurrentPrincipal, subscriptions: SubscriptionServiceDep
) -> list[SubscriptionOut]:
    """Newest first, without secrets."""
    return [SubscriptionOut.from_row(row) for row in await subscriptions.list(principal)]


@router.get("/{subscription_id}", summary="One subscription", responses=_NOT_FOUND)
async def get_subscription(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, subscriptions: SubscriptionServiceDep
) -> SubscriptionOut:
    return SubscriptionOut.from_row(await subscriptions.get(principal, subscription_id))


@router.delete("/{subscription_id}", status_code=204, summary="Unsubscribe", responses=_NOT_FOUND)
async def delete_subscription(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, subscriptions: SubscriptionServiceDep
) -> Response:
    """No event is sent to it any more, retries of earlier ones included."""
    await subscriptions.delete(principal, subscription_id)
    return Response(status_code=204)


@router.post("/{subscription_id}/rotate-secret", summary="Replace the signing secret", responses=_NOT_FOUND)
async def rotate_secret(
    subscription_id: uuid.UUID, principal: CurrentPrincipal, subscriptions: SubscriptionServiceDep
) -> SubscriptionSecretOut:
    """The new secret signs every later POST at once (retries included); it is shown only here."""
    row, secret = await subscriptions.rotate_secret(principal, subscription_id)
    return SubscriptionSecretOut(**SubscriptionOut.from_row(row).model_dump(), secret=secret)
