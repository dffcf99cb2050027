"""Who may watch a phone, and who may touch it — as the database says at that moment.

Watching (``admit``): a phone is visible to the tenant it is currently leased to, and to the
operator (who runs the fleet) while no tenant holds it; to anyone else it does not exist (404, as for an unknown id). Through a task or
a session, the task or session must be the caller's tenant's and hold the phone's open lease right
now. A viewer is admitted *under one lease*: when that lease ends or changes, the viewer is closed.

A viewer whose API key is revoked is closed at the next lease check (``revoked``), as is one let
in by a share link that was revoked or expired since (``shares_over``).

Touching (``ControlState.allows``), re-read for every input message:

- a task's phone: while the task is ``waiting_for_user`` (the agent asked a person), any user of
  the task's tenant; while it is ``user_control``, the user who took over (``task.takeover``'s
  ``user_id``; any user of the tenant for takeovers recorded before it was kept); otherwise the agent
  drives and everyone only watches;
- a session's phone: the session's own user (any user of its tenant if it has none), while active
  and not past its ``expires_at``;
- the operator and admins get no more than members: the operator watches an unheld phone but never
  touches it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, select

from orchestrator.db import (
    ApiKey,
    Device,
    DeviceSession,
    Event,
    Lease,
    SessionState,
    ShareLink,
    Task,
    TaskStatus,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.errors import DeviceNotFound, NoLiveDevice, SessionNotFound
from orchestrator.services.auth import Principal
from orchestrator.services.tasks import TAKEOVER, load_task

__all__ = ["Admission", "ControlState", "LiveAccess", "LiveTarget"]

TargetKind = Literal["device", "task", "session"]


@dataclass(frozen=True)
class LiveTarget:
    """What a viewer asked to watch: a device directly, or the phone of a task or a session."""

    kind: TargetKind
    id: uuid.UUID


@dataclass(frozen=True)
class Admission:
    """A viewer let in: the phone, and the lease it was let in under (None: the operator, no lease)."""

    device_id: uuid.UUID
    serial: str
    lease_id: uuid.UUID | None
    profile: dict[str, Any]
    provider: str = ""  # the device's provider ("sim", "redroid", "static_adb", …): picks the capture
    labels: dict[str, Any] = field(default_factory=dict)  # a "capture" label overrides the choice


@dataclass(frozen=True)
class ControlState:
    """Who holds a phone under one lease: a task (status, who took over) or a session (its user)."""

    lease_open: bool
    tenant_id: uuid.UUID | None = None
    task_status: TaskStatus | None = None
    session_state: SessionState | None = None
    holder: uuid.UUID | None = None  # the one user who may send input (None: any of the tenant's)
    # Admitted with no lease at all (the operator watching an idle phone): nothing "ended", it was never
    # leased to this viewer, and the reason must say so.
    idle: bool = False
    task_id: uuid.UUID | None = None  # the task holding the lease (its person-made steps are recorded)

    @property
    def records_steps(self) -> bool:
        """Whether input now is a person's step of a task (``orchestrator/live/user_steps.py``)."""
        return self.task_id is not None and self.task_status in (TaskStatus.WAITING_FOR_USER, TaskStatus.USER_CONTROL)

    def allows(self, principal: Principal) -> tuple[bool, str]:
        """(may send input, why not)."""
        if self.idle:
            return False, "view only: the phone is idle (not leased to you)"
        if not self.lease_open:
            return False, "view only: the phone's lease has ended"
        if self.tenant_id is None or self.tenant_id != principal.tenant_id:
            return False, "view only: the phone is not your tenant's"
        if self.holder is not None and self.holder != principal.user_id:
            return False, "view only: another user holds control of this phone"
        if self.task_status is not None:
            if self.task_status in (TaskStatus.WAITING_FOR_USER, TaskStatus.USER_CONTROL):
                return True, ""
            return False, f"view only: the agent controls the phone (task {self.task_status.value}); take over first"
        if self.session_state is not None:
            if self.session_state == SessionState.ACTIVE:
                return True, ""
            return False, f"view only: the session is {self.session_state.value}"
        return False, "view only: nobody holds this phone"


def _open_lease(*conditions: Any) -> Any:
    return and_(Lease.released_at.is_(None), *conditions)


class LiveAccess:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def admit(self, principal: Principal, target: LiveTarget) -> Admission:
        """The phone behind ``target`` if the caller may watch it. Raises ``DeviceNotFound``,
        ``TaskNotFound``, ``SessionNotFound`` (also for other tenants') or ``NoLiveDevice``."""
        async with self.db.transaction() as db_session:
            if target.kind == "device":
                query = (
                    select(Device, Lease)
                    .outerjoin(Lease, _open_lease(Lease.id == Device.lease_id))
                    .where(Device.id == target.id)
                )
                row = (await db_session.execute(query)).first()
                lease = row.Lease if row else None
                mine = lease is not None and lease.tenant_id == principal.tenant_id
                # The operator runs the fleet and may watch a phone no tenant holds
                # (idle, resetting, an operator's lease); a phone leased to another tenant shows
                # that tenant's screen, so to everyone else it does not exist.
                unheld = lease is None or lease.tenant_id is None
                if row is None or not (mine or (principal.is_operator and unheld)):
                    raise DeviceNotFound(target.id)
                device = row.Device
            else:
                if target.kind == "task":
                    task = await load_task(db_session, principal, target.id)
                    holds, what = Lease.task_id == task.id, f"task {task.id} ({task.status.value})"
                else:
                    own = await db_session.scalar(
                        select(DeviceSession).where(
                            DeviceSession.id == target.id, DeviceSession.tenant_id == principal.tenant_id
                        )
                    )
                    if own is None:
                        raise SessionNotFound(target.id)
                    if _session_state(own) != SessionState.ACTIVE:
                        raise NoLiveDevice(f"session {own.id} is {_session_state(own).value}; it holds no phone")
                    holds, what = Lease.session_id == own.id, f"session {own.id} ({own.state.value})"
                query = select(Device, Lease).join(Lease, _open_lease(Lease.id == Device.lease_id, holds))
                row = (await db_session.execute(query)).first()
                if row is None:
                    raise NoLiveDevice(f"{what} holds no phone right now")
                device, lease = row.Device, row.Lease
        return Admission(
            device.id, device.serial, lease.id if lease else None, dict(device.profile or {}),
            provider=device.provider, labels=dict(device.labels or {}),
        )  # fmt: skip

    async def current_leases(self, device_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID | None]:
        """Each device's open lease now (None: none; a device gone from the table is absent)."""
        if not device_ids:
            return {}
        query = (
            select(Device.id, Lease.id.label("lease_id"))
            .outerjoin(Lease, _open_lease(Lease.id == Device.lease_id))
            .where(Device.id.in_(device_ids))
        )
        async with self.db.transaction() as db_session:
            return {row.id: row.lease_id for row in (await db_session.execute(query)).all()}

    async def revoked(self, key_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``key_ids`` revoked (or deleted) since their viewers were let in."""
        if not key_ids:
            return set()
        async with self.db.transaction() as db_session:
            live = await db_session.scalars(
                select(ApiKey.id).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
            )
            return key_ids - set(live)

    async def shares_over(self, link_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Those of the share links ``link_ids`` revoked, expired or deleted since their viewers were let in."""
        if not link_ids:
            return set()
        async with self.db.transaction() as db_session:
            live = await db_session.scalars(
                select(ShareLink.id).where(
                    ShareLink.id.in_(link_ids), ShareLink.revoked_at.is_(None), ShareLink.expires_at > utcnow()
                )
            )
            return link_ids - set(live)

    async def control_state(self, lease_id: uuid.UUID | None) -> ControlState:
        """Who may send input under ``lease_id`` now."""
        if lease_id is None:
            return ControlState(lease_open=False, idle=True)
        async with self.db.transaction() as db_session:
            lease = await db_session.get(Lease, lease_id)
            if lease is None or lease.released_at is not None:
                return ControlState(lease_open=False)
            if lease.task_id is not None:
                task = await db_session.get(Task, lease.task_id)
                if task is None:
                    return ControlState(lease_open=True)
                holder = None
                if task.status == TaskStatus.USER_CONTROL:
                    takeover = await db_session.scalar(
                        select(Event)
                        .where(Event.task_id == task.id, Event.type == TAKEOVER)
                        .order_by(Event.id.desc())
                        .limit(1)
                    )
                    holder = _uuid((takeover.payload or {}).get("user_id")) if takeover else None
                return ControlState(True, task.tenant_id, task_status=task.status, holder=holder, task_id=task.id)
            if lease.session_id is not None:
                own = await db_session.get(DeviceSession, lease.session_id)
                if own is None:
                    return ControlState(lease_open=True)
                return ControlState(True, own.tenant_id, session_state=_session_state(own), holder=own.user_id)
            return ControlState(True, lease.tenant_id)


def _session_state(row: DeviceSession) -> SessionState:
    # Sessions expire lazily (whoever reads one past expires_at marks it): past it, it has ended.
    if row.state == SessionState.ACTIVE and row.expires_at is not None and row.expires_at <= utcnow():
        return SessionState.EXPIRED
    return row.state


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
