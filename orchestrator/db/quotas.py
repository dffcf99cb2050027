"""A tenant's limits and what it holds now: the one reckoning of quotas (docs/api.md, "Quotas and usage").

Here, in the database package, because both sides of the fleet enforce them: the worker's claim
(a task over a limit stays ``queued`` with ``waiting.kind = quota``), the API's session and
personal-phone creation (429), and the sweeper's quota pass, which sends a waiting task again once
its tenant has room. The defaults are ``settings.quotas`` (None: unlimited); a tenant's row may
override any of them by name (``tenants.limits``).

An eval's ``parallel`` is a limit of the same kind on its own tasks (``eval_refusal``, ``eval_room``):
at most that many of them are held (claimed and not ended) at once. The eval service queues only the
first ``parallel`` (the rest wait with ``waiting.kind = quota``), the claim checks it under a lock on
the eval's row, a worker ending one of its tasks sends the next waiting one at once
(``EVAL_ROOM_MESSAGE``), and the sweeper's quota pass sends any it missed.

Counting and starting are one transaction: ``refusal(..., lock=True)`` first locks the tenant's row
(PostgreSQL; SQLite writers are serialised already), so two claims of one tenant racing for its last
slot are taken one after the other, and the second sees the first. Nothing is locked for a tenant
without limits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import Select, func, or_, select

from orchestrator.db.engine import DbSession
from orchestrator.db.enums import HELD_TASK_STATUSES, SessionState, TaskStatus, WaitingKind
from orchestrator.db.models import DeviceSession, Eval, Lease, PersonalPhone, Task, Tenant
from orchestrator.db.types import utcnow

__all__ = [
    "EVAL_ROOM_MESSAGE",
    "LIMIT_NAMES",
    "Holdings",
    "Limits",
    "day_start",
    "eval_refusal",
    "eval_room",
    "eval_wait_message",
    "holdings",
    "lease_seconds_by_day",
    "lease_seconds_by_tenant_day",
    "refusal",
    "task_room",
    "tenant_limits",
]


@dataclass(frozen=True)
class Limits:
    """A tenant's limits in force; None is unlimited."""

    max_concurrent_tasks: int | None = None
    max_concurrent_devices: int | None = None
    max_personal_phones: int | None = None
    max_phone_minutes_per_day: int | None = None

    @classmethod
    def resolve(cls, defaults: Any, overrides: dict[str, Any] | None) -> Limits:
        """``defaults`` (``settings.quotas``, or anything with these attributes) with ``overrides``
        (a tenant's ``limits``) on top; a name the overrides hold wins, null included."""
        values = {name: getattr(defaults, name, None) for name in LIMIT_NAMES}
        values.update({k: v for k, v in (overrides or {}).items() if k in LIMIT_NAMES})
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(value is not None for value in asdict(self).values())

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


@dataclass(frozen=True)
class Holdings:
    """What a tenant holds now: tasks claimed and not ended, live sessions, personal phones, and
    the phone-seconds its leases used since the start of today (UTC)."""

    tasks: int
    sessions: int
    personal_phones: int
    phone_seconds_today: float

    @property
    def devices(self) -> int:
        return self.tasks + self.sessions


def day_start(now: dt.datetime) -> dt.datetime:
    """Midnight UTC of ``now``'s day: days of usage and of ``max_phone_minutes_per_day`` are UTC days."""
    return now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def tenant_limits(
    db_session: DbSession, tenant_id: uuid.UUID, defaults: Any, *, lock: bool = False
) -> Limits:
    """The tenant's limits in force; with ``lock``, its row is locked until the transaction ends
    (only when it has a limit: an unlimited tenant contends for nothing)."""
    overrides = await db_session.scalar(select(Tenant.limits).where(Tenant.id == tenant_id))
    limits = Limits.resolve(defaults, overrides)
    if lock and limits.any:
        await db_session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update())
    return limits


async def lease_seconds_by_day(
    db_session: DbSession, tenant_id: uuid.UUID, since: dt.datetime, now: dt.datetime | None = None
) -> dict[dt.date, float]:
    """The tenant's phone time (its leases, tasks' and sessions' alike) per UTC day from ``since``;
    a lease still open counts until ``now``, one spanning midnight on both days."""
    by_tenant = await lease_seconds_by_tenant_day(db_session, since, now, tenant_id=tenant_id)
    return by_tenant.get(tenant_id, {})


async def lease_seconds_by_tenant_day(
    db_session: DbSession,
    since: dt.datetime,
    now: dt.datetime | None = None,
    *,
    tenant_id: uuid.UUID | None = None,
) -> dict[uuid.UUID, dict[dt.date, float]]:
    """``lease_seconds_by_day`` for every tenant (or only ``tenant_id``)."""
    now = now or utcnow()
    query = select(Lease.tenant_id, Lease.acquired_at, Lease.released_at).where(
        Lease.tenant_id.is_not(None), or_(Lease.released_at.is_(None), Lease.released_at >= since)
    )
    if tenant_id is not None:
        query = query.where(Lease.tenant_id == tenant_id)
    found: dict[uuid.UUID, dict[dt.date, float]] = {}
    for tenant, acquired, released in (await db_session.execute(query)).all():
        days = found.setdefault(tenant, {})
        start, end = max(acquired, since), min(released or now, now)
        while start < end:
            piece_end = min(end, day_start(start) + dt.timedelta(days=1))
            day = start.astimezone(dt.UTC).date()
            days[day] = days.get(day, 0.0) + (piece_end - start).total_seconds()
            start = piece_end
    return found


async def holdings(db_session: DbSession, tenant_id: uuid.UUID, now: dt.datetime | None = None) -> Holdings:
    """What the tenant holds now (see ``Holdings``)."""
    now = now or utcnow()
    tasks = await db_session.scalar(
        select(func.count()).where(Task.tenant_id == tenant_id, Task.status.in_(HELD_TASK_STATUSES))
    )
    sessions = await db_session.scalar(
        select(func.count()).where(
            DeviceSession.tenant_id == tenant_id,
            DeviceSession.state == SessionState.ACTIVE,
            or_(DeviceSession.expires_at.is_(None), DeviceSession.expires_at > now),
        )
    )
    # Personal phones count whatever their state: an asleep one keeps its data.
    phones = await db_session.scalar(
        select(func.count()).where(PersonalPhone.tenant_id == tenant_id, PersonalPhone.deleted_at.is_(None))
    )
    today = day_start(now)
    used = await lease_seconds_by_day(db_session, tenant_id, today, now)
    return Holdings(int(tasks or 0), int(sessions or 0), int(phones or 0), sum(used.values()))


def _over(limits: Limits, held: Holdings, kind: str) -> str | None:
    """The first limit that ``kind`` (``task``, ``session`` or ``personal_phone``) would pass, said for a person."""
    minutes = limits.max_phone_minutes_per_day
    if kind == "personal_phone":
        cap = limits.max_personal_phones
        if cap is not None and held.personal_phones >= cap:
            return f"max_personal_phones: the tenant has {held.personal_phones} personal phones of {cap}"
        return None
    if kind == "task":
        cap = limits.max_concurrent_tasks
        if cap is not None and held.tasks >= cap:
            return f"max_concurrent_tasks: the tenant runs {held.tasks} tasks of {cap}"
    cap = limits.max_concurrent_devices
    if cap is not None and held.devices >= cap:
        return (f"max_concurrent_devices: the tenant holds {held.devices} phones of {cap} "
                f"({held.tasks} tasks, {held.sessions} sessions)")  # fmt: skip
    if minutes is not None and held.phone_seconds_today >= minutes * 60:
        return f"max_phone_minutes_per_day: the tenant used {held.phone_seconds_today / 60:.1f} phone-minutes of {minutes} today (UTC)"
    return None


async def refusal(
    db_session: DbSession, tenant_id: uuid.UUID, defaults: Any, kind: str, *, lock: bool = True
) -> str | None:
    """Why the tenant may not start one more ``kind`` now (the limit named first), or None: it may.

    Call it in the transaction that then starts the work (see the module docstring)."""
    limits = await tenant_limits(db_session, tenant_id, defaults, lock=lock)
    if not limits.any:
        return None
    return _over(limits, await holdings(db_session, tenant_id), kind)


async def task_room(db_session: DbSession, tenant_id: uuid.UUID, defaults: Any) -> int | None:
    """How many more tasks the tenant may start now (None: no limit bounds it)."""
    limits = await tenant_limits(db_session, tenant_id, defaults)
    if not limits.any:
        return None
    held = await holdings(db_session, tenant_id)
    if (
        limits.max_phone_minutes_per_day is not None
        and held.phone_seconds_today >= limits.max_phone_minutes_per_day * 60
    ):
        return 0
    rooms = []
    if limits.max_concurrent_tasks is not None:
        rooms.append(limits.max_concurrent_tasks - held.tasks)
    if limits.max_concurrent_devices is not None:
        rooms.append(limits.max_concurrent_devices - held.devices)
    return max(0, min(rooms)) if rooms else None


EVAL_ROOM_MESSAGE = "its eval has room again; waiting for a worker to claim it"
"""The ``waiting.message`` of an eval's task sent again when a slot of its ``parallel`` freed: such a
task counts against the eval's room until a worker claims it (no over-sending)."""


def eval_wait_message(over: str) -> str:
    """The ``waiting.message`` of an eval's task held back by its ``parallel``."""
    return f"{over}; it starts when the eval has room"


async def eval_refusal(db_session: DbSession, eval_id: uuid.UUID, *, lock: bool = True) -> str | None:
    """Why one more task of eval ``eval_id`` may not start now (its ``parallel`` is reached), or None.

    With ``lock`` the eval's row is locked until the transaction ends, so two claims racing for its
    last slot are taken one after the other (as ``refusal`` locks the tenant's)."""
    query = select(Eval.parallel).where(Eval.id == eval_id)
    parallel = await db_session.scalar(query.with_for_update() if lock else query)
    if parallel is None:
        return None
    running = await _eval_held(db_session, eval_id)
    if running >= parallel:
        return f"parallel: the eval runs {running} tasks of {parallel}"
    return None


async def eval_room(db_session: DbSession, eval_id: uuid.UUID) -> int | None:
    """How many more tasks of the eval may be sent now: its ``parallel`` less those held and those
    sent again and not yet claimed (None: the eval has no ``parallel``)."""
    parallel = await db_session.scalar(select(Eval.parallel).where(Eval.id == eval_id))
    if parallel is None:
        return None
    sent = await db_session.scalar(
        select(func.count()).where(
            Task.eval_id == eval_id,
            Task.status == TaskStatus.QUEUED,
            Task.waiting["message"].as_string() == EVAL_ROOM_MESSAGE,
        )
    )
    return max(0, parallel - await _eval_held(db_session, eval_id) - int(sent or 0))


def eval_held_back(eval_id: uuid.UUID, limit: int) -> Select[Any]:
    """The eval's tasks its ``parallel`` holds back (queued, waiting on ``quota``), oldest first, at
    most ``limit``: which go next when it has room (the ending task's hand-on, the sweeper's pass)."""
    return (
        select(Task.id, Task.tenant_id, Task.device_profile)
        .where(Task.eval_id == eval_id, Task.status == TaskStatus.QUEUED,
               Task.waiting["kind"].as_string() == WaitingKind.QUOTA.value)
        .order_by(Task.created_at, Task.id)
        .limit(limit)
    )  # fmt: skip


async def _eval_held(db_session: DbSession, eval_id: uuid.UUID) -> int:
    count = await db_session.scalar(
        select(func.count()).where(Task.eval_id == eval_id, Task.status.in_(HELD_TASK_STATUSES))
    )
    return int(count or 0)
