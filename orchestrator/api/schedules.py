"""Schedule routes: create, list, read, change (pause, resume, any field), delete, and a schedule's runs."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from orchestrator.api.deps import CurrentPrincipal, ScheduleServiceDep, TaskServiceDep
from orchestrator.api.schemas import ErrorOut, PageOut, TaskOut
from orchestrator.api.schemas.schedules import ScheduleCreate, ScheduleOut, ScheduleUpdate
from orchestrator.services.schedules import ScheduleService

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such schedule in your tenant"},
    422: {"model": ErrorOut, "description": "Invalid input: a bad cron expression or time zone, both or "
          "neither of cron and interval_s, an interval below the minimum; `message` says which"},
}  # fmt: skip

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], responses=_ERRORS)

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]


async def _out(schedules: ScheduleService, schedule: Any) -> ScheduleOut:
    runs = await schedules.last_runs([schedule])
    return ScheduleOut.from_row(schedule, runs.get(schedule.last_run_id) if schedule.last_run_id else None)


@router.post(
    "",
    status_code=201,
    summary="Create a schedule",
    responses={409: {"model": ErrorOut, "description": "Your tenant has its most schedules"}},
)
async def create_schedule(
    body: ScheduleCreate, principal: CurrentPrincipal, schedules: ScheduleServiceDep
) -> ScheduleOut:
    """Each due time makes a run: an ordinary task from `task`, linked by `schedule_id`."""
    return ScheduleOut.from_row(await schedules.create(principal, body))


@router.get("", summary="List schedules, newest first")
async def list_schedules(
    principal: CurrentPrincipal, schedules: ScheduleServiceDep, limit: Limit = 20, cursor: Cursor = None
) -> PageOut[ScheduleOut]:
    """Your tenant's schedules, each with its latest run and next due time."""
    page = await schedules.list(principal, limit=limit, cursor=cursor)
    runs = await schedules.last_runs(page.items)
    items = [ScheduleOut.from_row(s, runs.get(s.last_run_id) if s.last_run_id else None) for s in page.items]
    return PageOut[ScheduleOut](items=items, next_cursor=page.next_cursor)


@router.get("/{schedule_id}", summary="Read a schedule")
async def get_schedule(
    schedule_id: uuid.UUID, principal: CurrentPrincipal, schedules: ScheduleServiceDep
) -> ScheduleOut:
    return await _out(schedules, await schedules.get(principal, schedule_id))


@router.patch("/{schedule_id}", summary="Change a schedule (pause, resume, any field)")
async def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleUpdate, principal: CurrentPrincipal, schedules: ScheduleServiceDep
) -> ScheduleOut:
    """A new `cron` or `interval_s`, or a resume, makes the next due time the first after now."""
    return await _out(schedules, await schedules.change(principal, schedule_id, body))


@router.delete("/{schedule_id}", status_code=204, summary="Delete a schedule")
async def delete_schedule(
    schedule_id: uuid.UUID, principal: CurrentPrincipal, schedules: ScheduleServiceDep
) -> Response:
    """No more runs; the runs it made stay, as tasks with `schedule_id` null."""
    await schedules.delete(principal, schedule_id)
    return Response(status_code=204)


@router.get("/{schedule_id}/runs", summary="A schedule's runs, newest first")
async def list_runs(
    schedule_id: uuid.UUID,
    principal: CurrentPrincipal,
    schedules: ScheduleServiceDep,
    tasks: TaskServiceDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PageOut[TaskOut]:
    """The tasks the schedule made, paged like `GET /api/v1/tasks`."""
    await schedules.get(principal, schedule_id)  # 404 for an unknown or another tenant's schedule
    page = await tasks.list(principal, status=None, limit=limit, cursor=cursor, schedule_id=schedule_id)
    return PageOut[TaskOut](items=[TaskOut.from_row(t) for t in page.items], next_cursor=page.next_cursor)
