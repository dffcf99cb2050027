"""``GET /metrics``: the fleet's Prometheus metrics (``services/metrics.py`` says what they mean).

Open by default, as scrape targets usually are (keep the API's port off the internet, or put the
route behind the proxy's ACL). With ``PHONEFLEET_API__METRICS_TOKEN`` set it needs
``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: <token>}``); API keys
and login cookies do not open it. Left out of the OpenAPI schema: it is not JSON.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from orchestrator.api.deps import MetricsServiceDep, SettingsDep
from orchestrator.errors import Unauthenticated

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep, service: MetricsServiceDep) -> Response:
    """Prometheus text format (OpenMetrics when the scraper asks for it)."""
    token = settings.api.metrics_token
    if token is not None:
        scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise Unauthenticated("/metrics needs 'Authorization: Bearer <PHONEFLEET_API__METRICS_TOKEN>'")
    body, content_type = await service.render(request.headers.get("accept"))
    return Response(content=body, media_type=content_type)
