"""Helpers for the schedule tests: a tenant's principal, a schedule made through the service, runs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select, update

from orchestrator.db import Event, Schedule, Task, TaskStatus, UserRole, utcnow
from orchestrator.db.database import Database
from orchestrator.services.auth import Principal
from orchestrator.services.schedules import ScheduleService, ScheduleSpec
from orchestrator.settings import ScheduleSettings
from tests.databases import open_sessions
from tests.orchestrator.factories import make_api_key, make_user


async def make_principal(url: str) -> Principal:
    """A new tenant with a member's key, as the API would see its caller."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        user = await make_user(session)
        key = await make_api_key(session, user)
        return Principal(key_id=key.id, tenant_id=user.tenant_id, user_id=user.id, role=UserRole.MEMBER)


async def make_schedule(url: str, principal: Principal, settings: ScheduleSettings | None = None,
                        **body: Any) -> Schedule:  # fmt: skip
    """A schedule made by ``ScheduleService.create`` (an interval of 20 s unless ``body`` says)."""
    spec = ScheduleSpec.model_validate({"task": {"instruction": "Open Settings and turn on Wi-Fi"},
                                        **({"interval_s": 20} if "cron" not in body else {}), **body})  # fmt: skip
    async with open_sessions(url) as sessions:
        return await ScheduleService(Database(sessions), settings or ScheduleSettings()).create(principal, spec)


async def set_schedule(url: str, schedule_id: uuid.UUID, **values: Any) -> None:
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        await session.execute(update(Schedule).where(Schedule.id == schedule_id).values(**values))


async def read_schedule(url: str, schedule_id: uuid.UUID) -> Schedule:
    async with open_sessions(url) as sessions, sessions() as session:
        return await session.get_one(Schedule, schedule_id)


async def runs_of(url: str, schedule_id: uuid.UUID) -> list[Task]:
    """The schedule's runs, oldest first."""
    async with open_sessions(url) as sessions, sessions() as session:
        query = select(Task).where(Task.schedule_id == schedule_id).order_by(Task.created_at, Task.id)
        return list(await session.scalars(query))


async def events_of(url: str, tenant_id: uuid.UUID, prefix: str = "schedule.") -> list[Event]:
    async with open_sessions(url) as sessions, sessions() as session:
        query = select(Event).where(Event.tenant_id == tenant_id, Event.type.startswith(prefix)).order_by(Event.id)
        return list(await session.scalars(query))


async def end_run(url: str, task_id: uuid.UUID, status: TaskStatus = TaskStatus.SUCCEEDED,
                  at: dt.datetime | None = None) -> None:  # fmt: skip
    """End a run as a worker would (the row's final state); the scheduler only reads it."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == task_id)
            .values(status=status, finished_at=at or utcnow(), waiting=None, reason=status.value)
        )  # fmt: skip
