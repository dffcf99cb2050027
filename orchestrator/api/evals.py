"""``/api/v1/evals``: run a suite of task templates on the fleet and read its report (docs/api.md, "Evals")."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from orchestrator.api.deps import CurrentPrincipal, EvalServiceDep
from orchestrator.api.schemas import ErrorOut
from orchestrator.services.evals import EvalSpec, summary

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    422: {"model": ErrorOut, "description": "Invalid input: an unknown suite, template or model; `message` says which"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such eval in your tenant"}}

router = APIRouter(prefix="/api/v1/evals", tags=["evals"], responses=_ERRORS)


@router.post("", status_code=201, summary="Run a suite")
async def create_eval(body: EvalSpec, principal: CurrentPrincipal, evals: EvalServiceDep) -> dict[str, Any]:
    """One task per template, repeat and model, each queued with its evaluation; the answer is the
    eval's report so far (every task pending)."""
    row, tasks = await evals.create(principal, body)
    return summary(row, tasks)


@router.get("", summary="Your tenant's evals, newest first")
async def list_evals(principal: CurrentPrincipal, evals: EvalServiceDep) -> list[dict[str, Any]]:
    """Each eval's report without its task list."""
    return [{k: v for k, v in summary(row, tasks).items() if k != "task_list"}
            for row, tasks in await evals.list(principal)]  # fmt: skip


@router.get("/{eval_id}", summary="One eval and its report", responses=_NOT_FOUND)
async def get_eval(eval_id: uuid.UUID, principal: CurrentPrincipal, evals: EvalServiceDep) -> dict[str, Any]:
    """Success rates with their Wilson 95 % intervals overall, per model, per template and per
    complexity; infrastructure failures apart; every task with its outcome (`task_list`)."""
    row, tasks = await evals.get(principal, eval_id)
    return summary(row, tasks)
