"""``GET /api/v1/tasks/{task_id}/webhook-deliveries``: the delivery log of a task's webhook."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.api.deps import CurrentPrincipal, WebhookServiceDep
from orchestrator.api.schemas import ErrorOut, PageOut, WebhookDeliveryOut

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such task in your tenant"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}

router = APIRouter(prefix="/api/v1/tasks", tags=["webhooks"], responses=_ERRORS)


@router.get("/{task_id}/webhook-deliveries", summary="List a task's webhook deliveries, newest first")
async def list_webhook_deliveries(
    task_id: uuid.UUID,
    principal: CurrentPrincipal,
    webhooks: WebhookServiceDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")] = None,
) -> PageOut[WebhookDeliveryOut]:
    """One row per event sent (or being sent) to the task's `webhook_url`: status, attempts, last error."""
    page = await webhooks.list(principal, task_id, limit=limit, cursor=cursor)
    return PageOut[WebhookDeliveryOut](
        items=[WebhookDeliveryOut.from_view(v) for v in page.items], next_cursor=page.next_cursor
    )
