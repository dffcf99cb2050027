"""Schedules: a task submitted again and again, by a cron expression in a time zone or every N seconds.

Create, read, list, change and delete a tenant's schedules; the runs are made by the scheduler
(``scheduler.py``). The task body is a ``TaskSpec``, validated and checked exactly as a submission
is (its device profile must exist, its webhook URL pass the target policy). The tenant limits
(``schedules.max_per_tenant``, ``schedules.min_interval_s``) are checked here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select, update

from orchestrator.db import CatchUp, DbSession, Overlap, Schedule, Task, Tenant, utcnow
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.errors import InvalidSchedule, LimitReached, ScheduleNotFound
from orchestrator.model_endpoints import endpoint_for
from orchestrator.profiles import profile_match
from orchestrator.services.auth import Principal
from orchestrator.services.due_times import Cadence, check_cron, check_timezone
from orchestrator.services.personal_phones import PersonalPhoneService, check_own_phone
from orchestrator.services.specs import TaskSpec
from orchestrator.services.webhook_targets import TargetPolicy
from orchestrator.settings import ModelSettings, ScheduleSettings

__all__ = ["ScheduleChange", "ScheduleService", "ScheduleSpec", "cadence_of"]

# The longest interval: a year (an INTEGER column, and anything longer is a mistake).
MAX_INTERVAL_S = 366 * 24 * 3600


class _Timing(BaseModel):
    """The fields that say when a schedule is due, checked alike on creation and change."""

    cron: str | None = Field(
        default=None, max_length=200, description='Five-field cron expression, e.g. "0 9 * * 1-5".'
    )
    timezone: str | None = Field(
        default=None, max_length=64, description='IANA time zone the cron expression is read in (default "UTC").'
    )
    interval_s: int | None = Field(
        default=None, ge=1, le=MAX_INTERVAL_S, description="Seconds between runs, instead of cron."
    )
    catch_up: CatchUp | None = Field(
        default=None, description="Due times missed while no scheduler ran: skip them, or run once for all."
    )
    overlap: Overlap | None = Field(
        default=None, description="A run due while the previous one still goes: skip it, or queue it."
    )
    paused: bool | None = Field(default=None, description="A paused schedule makes no runs.")

    @field_validator("cron", mode="after")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("timezone", mode="after")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _one_rule(self) -> Self:
        if self.cron is not None and self.interval_s is not None:
            raise ValueError("give either cron or interval_s, not both")
        if self.timezone is not None and self.interval_s is not None:
            raise ValueError("timezone goes with cron; an interval is the same in every time zone")
        return self


class ScheduleSpec(_Timing):
    """A new schedule (``POST /api/v1/schedules``): the task, and either ``cron`` or ``interval_s``."""

    model_config = ConfigDict(extra="forbid")

    task: TaskSpec = Field(description="The body of POST /api/v1/tasks; each run is such a task.")

    @model_validator(mode="after")
    def _some_rule(self) -> Self:
        if self.cron is None and self.interval_s is None:
            raise ValueError('give either cron (with timezone) or interval_s, e.g. "interval_s": 3600')
        return self


class ScheduleChange(_Timing):
    """A change (``PATCH``): any field; ``cron`` replaces ``interval_s`` and the reverse."""

    model_config = ConfigDict(extra="forbid")

    task: TaskSpec | None = Field(default=None, description="A new task body for the runs to come.")


def cadence_of(schedule: Schedule) -> Cadence:
    return Cadence(cron=schedule.cron, timezone=schedule.timezone, interval_s=schedule.interval_s)


class ScheduleService:
    """Schedule rules for one tenant at a time; every method takes the calling ``Principal``."""

    def __init__(
        self,
        db: Database,
        settings: ScheduleSettings,
        *,
        profiles: Mapping[str, dict[str, Any]] | None = None,
        webhook_targets: TargetPolicy | None = None,
        personal_phones: PersonalPhoneService | None = None,
        models: ModelSettings | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.models = models or ModelSettings()  # the endpoints a run's ``model`` may name
        self.personal_phones = personal_phones  # a run on a personal phone: it must be the caller's
        self.profiles = dict(profiles or {})
        self.webhook_targets = webhook_targets or TargetPolicy(allow_private=True)

    async def _task_fields(self, principal: Principal, spec: TaskSpec) -> dict[str, Any]:
        """The task body as stored, checked as ``TaskService.create`` checks a submission."""
        profile_match(spec.device_profile, self.profiles)
        fields = spec.stored_fields()
        if fields["model"] is not None:
            fields["model"] = endpoint_for(fields["model"], self.models).name
        self.webhook_targets.check_url(fields["webhook_url"])
        await check_own_phone(self.personal_phones, principal, spec.personal_phone_id)
        if spec.personal_phone_id is not None:
            fields["personal_phone_id"] = str(spec.personal_phone_id)  # the schedule keeps its body as JSON
        return fields

    def _first_due(self, cadence: Cadence, now: dt.datetime) -> dt.datetime:
        """The first due time after ``now``; raises ``InvalidSchedule`` for a schedule due more
        often than the tenant limit allows, or never."""
        try:
            gap = cadence.shortest_gap_s(now)
            first = cadence.next_after(now)
        except ValueError as exc:
            raise InvalidSchedule(str(exc)) from exc
        least = self.settings.min_interval_s
        if gap < least:
            rule = f"cron {cadence.cron!r}" if cadence.cron else f"interval_s {cadence.interval_s}"
            raise InvalidSchedule(
                f"{rule} is due every {gap:g} s at the shortest; the minimum interval is {least:g} s "
                "(schedules.min_interval_s)",
                context={"min_interval_s": least, "interval_s": gap},
            )
        return first

    async def create(self, principal: Principal, spec: ScheduleSpec) -> Schedule:
        """A new schedule, due first at the next due time after now. Raises ``InvalidSchedule``,
        ``LimitReached`` (the tenant has ``schedules.max_per_tenant``), and what a task submission
        raises for its body (``UnknownDeviceProfile``, ``WebhookTargetRefused``)."""
        fields = await self._task_fields(principal, spec.task)
        cadence = Cadence(cron=spec.cron, timezone=spec.timezone or "UTC", interval_s=spec.interval_s)
        now = utcnow()
        first_due = self._first_due(cadence, now)
        async with self.db.transaction(write=True) as db_session:
            # The tenant's row, locked: two creations at once cannot both pass the limit.
            await db_session.scalar(select(Tenant.id).where(Tenant.id == principal.tenant_id).with_for_update())
            count = await db_session.scalar(
                select(func.count()).select_from(Schedule).where(Schedule.tenant_id == principal.tenant_id)
            )
            most = self.settings.max_per_tenant
            if (count or 0) >= most:
                raise LimitReached(
                    f"your tenant has {count} schedules, the most it may have "
                    f"(schedules.max_per_tenant = {most}); delete one first",
                    context={"limit": most},
                )
            schedule = Schedule(
                id=uuid.uuid4(), created_at=now, updated_at=now, tenant_id=principal.tenant_id,
                created_by=principal.key_id, task=fields, cron=cadence.cron, timezone=cadence.timezone,
                interval_s=cadence.interval_s, catch_up=spec.catch_up or CatchUp.SKIP,
                overlap=spec.overlap or Overlap.SKIP, paused=bool(spec.paused), next_due_at=first_due,
                consecutive_failures=0,
            )  # fmt: skip
            db_session.add(schedule)
        return schedule

    async def get(self, principal: Principal, schedule_id: uuid.UUID) -> Schedule:
        """The tenant's schedule; raises ``ScheduleNotFound`` (also for another tenant's id)."""
        async with self.db.transaction() as db_session:
            return await _load(db_session, principal, schedule_id)

    async def list(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[Schedule]:
        """The tenant's schedules, newest first, ``limit`` at a time; raises ``InvalidCursor``."""
        query = select(Schedule).where(Schedule.tenant_id == principal.tenant_id)
        query = newest_first(query, Schedule, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            return time_page(list(await db_session.scalars(query)), limit)

    async def last_runs(self, schedules: list[Schedule]) -> dict[uuid.UUID, Task]:
        """Each schedule's latest run, by run id (what a listing shows beside each schedule)."""
        ids = [s.last_run_id for s in schedules if s.last_run_id is not None]
        if not ids:
            return {}
        async with self.db.transaction() as db_session:
            return {t.id: t for t in await db_session.scalars(select(Task).where(Task.id.in_(ids)))}

    async def change(self, principal: Principal, schedule_id: uuid.UUID, change: ScheduleChange) -> Schedule:
        """Change any field. A new rule, or a resume, makes the next due time the first after now
        (the due times a pause covered are not made up for); a resume also clears the failure count."""
        fields = None if change.task is None else await self._task_fields(principal, change.task)
        if change.paused is False and fields is None:
            # A resume runs the stored task again: its personal phone must still be the caller's
            # (one deleted paused the schedule: docs/personal-phones.md).
            named = (await self.get(principal, schedule_id)).task.get("personal_phone_id")
            await check_own_phone(self.personal_phones, principal, None if named is None else uuid.UUID(named))
        now = utcnow()
        async with self.db.transaction(write=True) as db_session:
            schedule = await _load(db_session, principal, schedule_id, for_update=True)
            retimed = False
            if change.cron is not None:
                schedule.cron, schedule.interval_s, retimed = change.cron, None, True
            if change.interval_s is not None:
                schedule.interval_s, schedule.cron, schedule.timezone = change.interval_s, None, "UTC"
                retimed = True
            if change.timezone is not None:
                if schedule.cron is None:
                    raise InvalidSchedule("timezone goes with cron; this schedule runs by interval_s")
                schedule.timezone, retimed = change.timezone, True
            if fields is not None:
                schedule.task = fields
            if change.catch_up is not None:
                schedule.catch_up = change.catch_up
            if change.overlap is not None:
                schedule.overlap = change.overlap
            if change.paused is not None and change.paused != schedule.paused:
                schedule.paused, schedule.paused_reason = change.paused, None
                if not change.paused:
                    schedule.consecutive_failures, retimed = 0, True
            if retimed:
                schedule.next_due_at = self._first_due(cadence_of(schedule), now)
            schedule.updated_at = now
            return schedule

    async def delete(self, principal: Principal, schedule_id: uuid.UUID) -> None:
        """Delete it; its runs stay, as ordinary tasks no longer linked to a schedule."""
        async with self.db.transaction(write=True) as db_session:
            schedule = await _load(db_session, principal, schedule_id, for_update=True)
            # As ON DELETE SET NULL does; explicit, so it holds on a connection with foreign keys off.
            await db_session.execute(
                update(Task).where(Task.schedule_id == schedule.id).values(schedule_id=None)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            await db_session.delete(schedule)


async def _load(
    db_session: DbSession, principal: Principal, schedule_id: uuid.UUID, *, for_update: bool = False
) -> Schedule:
    query = select(Schedule).where(Schedule.id == schedule_id, Schedule.tenant_id == principal.tenant_id)
    schedule = await db_session.scalar(query.with_for_update() if for_update else query)
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    return schedule
