"""Probes for load balancers and orchestrators: liveness and readiness (no auth)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.api.deps import HealthServiceDep
from orchestrator.api.schemas import ReadinessOut

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    """Answers while the event loop runs; checks nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the broker are reachable (and whether the model server is)",
    responses={503: {"model": ReadinessOut, "description": "Something is down; `checks` says what"}},
)
async def readyz(health: HealthServiceDep) -> JSONResponse:
    """200 when the database and broker checks are "ok" (status ``degraded`` if the model server is
    not), else 503; each check's reason either way."""
    readiness = await health.readiness()
    body = ReadinessOut(status=readiness.status, checks=readiness.checks)
    return JSONResponse(body.model_dump(), status_code=200 if readiness.ready else 503)
