"""Task routes: submit, list, read, cancel, people's answers to the agent (confirm, takeover,
handback, reply), the recorded steps with their screenshots, and the whole trajectory as a zip."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse

from orchestrator.api.deps import CurrentPrincipal, StepServiceDep, TaskServiceDep
from orchestrator.api.live import LiveHubDep
from orchestrator.api.recordings import RecordingServiceDep
from orchestrator.api.schemas import (
    ConfirmIn,
    ErrorOut,
    HandbackIn,
    PageOut,
    ReplyIn,
    StepOut,
    TakeoverIn,
    TaskCreate,
    TaskOut,
)
from orchestrator.db import TaskStatus
from orchestrator.services.trajectory_zip import TrajectoryStep, trajectory_filename, trajectory_zip

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such task in your tenant"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=_ERRORS)

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retry-safe submission: the same key and body return the original task.",
    ),
]


@router.post(
    "",
    status_code=202,
    summary="Submit a task",
    responses={
        200: {"model": TaskOut, "description": "Replay of an Idempotency-Key: the original task"},
        409: {"model": ErrorOut, "description": "Idempotency-Key reused with a different body"},
        429: {"model": ErrorOut, "description": "Too many submissions; see Retry-After"},
    },
)
async def create_task(
    body: TaskCreate,
    principal: CurrentPrincipal,
    tasks: TaskServiceDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TaskOut:
    """Queue a task for a worker; answers 202 with the task (status `queued`).
    \f
    (FastAPI cuts the OpenAPI description at the form feed above: what follows is for readers of the
    code.) This route documents ``POST /api/v1/tasks`` (OpenAPI, docs/api.md) and is the contract,
    but it does not serve most submissions: with ``api.submit_fast_path`` on (the default), the
    ``TaskSubmission`` middleware in ``orchestrator/api/submission.py`` answers the ordinary request
    (a Bearer key, a JSON body that validates) before FastAPI's routing, and this route answers the
    rest: the dashboard's login cookie (CSRF), malformed bodies and headers, and every request when
    the switch is off. A change here (authentication, parsing, validation order, idempotency replay,
    errors) must be made there too; tests/orchestrator/api/test_submission.py compares the two.
    """
    task, created = await tasks.create(principal, body, idempotency_key)
    if not created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return TaskOut.from_row(task)


@router.get("", summary="List tasks, newest first")
async def list_tasks(
    principal: CurrentPrincipal,
    tasks: TaskServiceDep,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this status.")] = None,
    personal_phone_id: Annotated[
        uuid.UUID | None, Query(description="Only tasks on this personal phone.")
    ] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PageOut[TaskOut]:
    """Your tenant's tasks, paged by an opaque cursor."""
    page = await tasks.list(
        principal, status=status, personal_phone_id=personal_phone_id, limit=limit, cursor=cursor
    )
    return PageOut[TaskOut](items=[TaskOut.from_row(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/{task_id}", summary="Read a task")
async def get_task(task_id: uuid.UUID, principal: CurrentPrincipal, tasks: TaskServiceDep) -> TaskOut:
    """One task of your tenant."""
    return TaskOut.from_row(await tasks.get(principal, task_id))


@router.post(
    "/{task_id}/cancel",
    summary="Cancel a task",
    responses={409: {"model": ErrorOut, "description": "The task already ended"}},
)
async def cancel_task(task_id: uuid.UUID, principal: CurrentPrincipal, tasks: TaskServiceDep) -> TaskOut:
    """Queued: cancelled at once. Held by a worker: `cancel_requested` is set and the worker stops it."""
    return TaskOut.from_row(await tasks.cancel(principal, task_id))


@router.post(
    "/{task_id}/confirm",
    summary="Approve or deny a sensitive action",
    responses={409: {"model": ErrorOut, "description": "The agent is not waiting for a confirmation"}},
)
async def confirm_task(
    task_id: uuid.UUID, body: ConfirmIn, principal: CurrentPrincipal, tasks: TaskServiceDep
) -> TaskOut:
    """While `awaiting_confirmation`: records a `task.confirmation` event {approved} the worker reads."""
    return TaskOut.from_row(await tasks.confirm(principal, task_id, body.approved))


@router.post(
    "/{task_id}/takeover",
    summary="Take control of the phone",
    responses={409: {"model": ErrorOut, "description": "The task is not running or waiting for you"}},
)
async def takeover_task(
    task_id: uuid.UUID, principal: CurrentPrincipal, tasks: TaskServiceDep, body: TakeoverIn | None = None
) -> TaskOut:
    """While `running` or `waiting_for_user`: records a `task.takeover` event {status, note}."""
    return TaskOut.from_row(await tasks.takeover(principal, task_id, body.note if body else None))


@router.post(
    "/{task_id}/handback",
    summary="Hand control back to the agent",
    responses={409: {"model": ErrorOut, "description": "Nobody took over"}},
)
async def handback_task(
    task_id: uuid.UUID, body: HandbackIn, principal: CurrentPrincipal, tasks: TaskServiceDep, live: LiveHubDep
) -> TaskOut:
    """In `user_control`, or `waiting_for_user` on the agent's takeover request: a `task.handback` {note}
    and a `Hand_back` step (actor `user`) after the steps the person made on the live view."""
    await live.flush_user_steps(task_id)  # their last action's step is recorded before the hand-back
    return TaskOut.from_row(await tasks.handback(principal, task_id, body.note))


@router.post(
    "/{task_id}/reply",
    summary="Answer the agent's question",
    responses={409: {"model": ErrorOut, "description": "The agent has no question waiting"}},
)
async def reply_task(
    task_id: uuid.UUID, body: ReplyIn, principal: CurrentPrincipal, tasks: TaskServiceDep
) -> TaskOut:
    """While `waiting_for_user` on an unanswered `task.question`: a `task.reply` event {answer}."""
    return TaskOut.from_row(await tasks.reply(principal, task_id, body.answer))


@router.get("/{task_id}/steps", summary="List a task's steps, oldest first")
async def list_steps(
    task_id: uuid.UUID,
    principal: CurrentPrincipal,
    steps: StepServiceDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PageOut[StepOut]:
    """The agent's steps so far, paged by an opaque cursor."""
    page = await steps.list(principal, task_id, limit=limit, cursor=cursor)
    return PageOut[StepOut](items=[StepOut.from_row(s) for s in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{task_id}/steps/{index}/screenshot",
    summary="A step's screenshot",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The image"},
        409: {"model": ErrorOut, "description": "Stored encrypted with another key (storage.encryption_key)"},
    },
)
async def get_screenshot(
    task_id: uuid.UUID,
    index: Annotated[int, Path(ge=0, lt=2**31, description="The step's index (from 0).")],
    principal: CurrentPrincipal,
    steps: StepServiceDep,
) -> Response:
    """The screenshot the model saw at step `index` (JPEG), decrypted when stored encrypted."""
    return image_response(await steps.screenshot(principal, task_id, index))


def image_response(data: bytes) -> Response:
    """A stored screenshot as an answer: JPEG as written (a PNG of an older version as such)."""
    media_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.get(
    "/{task_id}/trajectory",
    summary="Download the trajectory (zip)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "task.json, steps.jsonl, screenshots/"}
    },
)
async def get_trajectory(
    task_id: uuid.UUID, principal: CurrentPrincipal, steps: StepServiceDep, recordings: RecordingServiceDep
) -> StreamingResponse:
    """The task, its steps and their screenshots as one zip, streamed; a running task's is a snapshot.
    An ended task's recording is in it too (`recording.mp4`), when the caller may play it."""
    task, rows = await steps.snapshot(principal, task_id)
    recording = await recordings.archived(principal, task_id) if task.status.is_final else None
    archived = [
        TrajectoryStep(s.index, StepOut.from_row(s).model_dump(mode="json"), steps.screenshot_path(s))
        for s in rows
    ]
    # A sync generator: Starlette runs it in its thread pool, so file reads and deflate stay off the loop.
    return StreamingResponse(
        trajectory_zip(TaskOut.from_row(task).model_dump(mode="json"), archived, read=steps.read, recording=recording),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{trajectory_filename(task.id)}"',
            "Cache-Control": "no-store",  # a running task's trajectory grows
        },
    )
