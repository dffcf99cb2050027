"""Sessions: a phone held for a person or an external agent (no task), as cloud-browser services have them.

A session leases a phone through the pool's ``LeaseStore`` (holder ``session:<id>``) and lives
``ttl_s`` seconds past its creation or last keepalive:

    active ──DELETE──▶ closed
       └──no keepalive by expires_at──▶ expired

- **create**: the row is inserted first (the lease row points at it), then ``wait_acquire`` waits
  up to ``wait_s`` for a phone; none → the row is deleted and ``NoDeviceAvailable`` (503) raised.
  Then the row gets its device and a ``session.created`` event in one transaction. Until then the
  row has no device and reads do not show it.
- **Lease TTL = session TTL + ``lease_grace_s``**: the session's ``expires_at`` is the contract;
  the lease outlives it by the grace, so the pool's reaper reclaims the phone even when nobody
  marks the session (no sweeper, a crashed API), and never before the session ends.
- **keepalive** heartbeats the lease, then moves ``expires_at`` to now + ``ttl_s``.
- **close** releases the lease (the device goes ``resetting``; the pool manager resets it to
  ``idle``), then marks the session ``closed`` with a ``session.closed`` event. Closing a session
  that already ended answers it as it is.
- **Expiry**: a session past ``expires_at`` is marked ``expired`` (``session.expired`` event) and its
  lease released, by whoever sees it first: the sweeper in ``phonefleet pool`` (``expire_due``, every
  sweep) or, lazily, any read or keepalive through the API — so answers are never stale, even
  without a sweeper. Marking comes first and is fenced on ``expires_at``: a keepalive that got in
  first wins, and a session is never expired after its keepalive succeeded.

The lease calls are the ``LeaseStore``'s own transactions, never nested in one of ours (on SQLite a
second writer would wait on the first); every state change of the row is one conditional UPDATE.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, insert, select, update

from device_pool.pool import LeaseStore
from device_pool.pool.personal import PersonalPhoneLeases
from orchestrator.db import (
    DbSession,
    Device,
    DeviceSession,
    DeviceState,
    Event,
    SessionState,
    UserRole,
    utcnow,
)
from orchestrator.db.database import Database, unavailable_as_error
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.db.quotas import day_start
from orchestrator.db.quotas import refusal as quota_refusal
from orchestrator.errors import (
    DatabaseUnavailable,
    InvalidTransition,
    NoLiveDevice,
    QuotaExceeded,
    SessionNotFound,
)
from orchestrator.profiles import profile_match
from orchestrator.services.auth import Principal
from orchestrator.services.personal_phones import PersonalPhoneService, check_own_phone
from orchestrator.services.specs import MAX_PROFILE_BYTES, ProfileName, _json_size

__all__ = ["LEASE_GRACE_S", "SessionService", "SessionSpec", "SessionView", "session_holder"]

logger = logging.getLogger(__name__)

# The lease outlives its session by this much: above the sweeper's interval (10 s), so the sweeper
# normally ends an expired session (with its event) before the reaper takes the phone back.
LEASE_GRACE_S = 30.0
CLOSED_REASON, EXPIRED_REASON = "session_closed", "session_expired"  # the leases' release_reason


def session_holder(session_id: uuid.UUID) -> str:
    """The lease holder of a session's phone."""
    return f"session:{session_id}"


class SessionSpec(BaseModel):
    """A session request (``POST /api/v1/sessions``)."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: int = Field(
        default=600, ge=30, le=86400, description="Seconds the session lives without a keepalive (30–86400)."
    )
    device_profile: dict[str, Any] | ProfileName | None = Field(
        default=None,
        description="What the phone must match, as for tasks: an object, or a profile name the operator defined.",
    )
    wait_s: float = Field(
        default=10, ge=0, le=60, description="Seconds to wait for a free phone before answering 503 (0–60)."
    )
    personal_phone_id: uuid.UUID | None = Field(
        default=None,
        description="Hold your personal phone (woken if asleep; its data is kept after the session). "
        "Not with device_profile: the phone has its own.",
    )

    @model_validator(mode="after")
    def _one_shape(self) -> SessionSpec:
        if self.personal_phone_id is not None and self.device_profile is not None:
            raise ValueError("personal_phone_id and device_profile are exclusive: a personal phone has its own shape")
        return self

    @field_validator("device_profile", mode="after")
    @classmethod
    def _profile(cls, value: dict[str, Any] | str | None) -> dict[str, Any] | str | None:
        if isinstance(value, dict):
            _json_size(value, MAX_PROFILE_BYTES)  # the tasks' rule: ≤ 4 KB, storable JSON
        return value


@dataclass(frozen=True)
class SessionView:
    """A session with its phone (None only for a row that never got one, which reads do not show)."""

    session: DeviceSession
    device: Device | None


def _quota_retry_after_s(over: str, now: dt.datetime) -> float:
    """When to ask again: the next UTC day for the daily phone-minutes, a little while otherwise."""
    if over.startswith("max_phone_minutes_per_day"):
        return (day_start(now) + dt.timedelta(days=1) - now).total_seconds()
    return 10.0


class SessionService:
    """Sessions for one tenant at a time, and the expiry sweep across tenants (``expire_due``)."""

    def __init__(
        self,
        db: Database,
        leases: LeaseStore,
        *,
        profiles: Mapping[str, dict[str, Any]] | None = None,
        lease_grace_s: float = LEASE_GRACE_S,
        personal_phones: PersonalPhoneService | None = None,
        wake_timeout_s: float = 120.0,
        quotas: Any = None,
        max_lifetime_s: float | None = None,
        recorders: Any = None,
    ) -> None:
        self.db = db
        self.max_lifetime_s = max_lifetime_s  # settings.sessions.max_lifetime_s: expires_at never passes it
        # services/recordings.py's SessionRecorders: records each session's phone (None: none recorded).
        self.recorders = recorders
        self.quotas = quotas  # settings.quotas: the tenants' default limits (orchestrator/db/quotas.py)
        self.leases = leases
        self.profiles = dict(profiles or {})
        self.lease_grace_s = lease_grace_s
        self.personal_phones = personal_phones
        self.wake_timeout_s = wake_timeout_s

    async def create(self, principal: Principal, spec: SessionSpec) -> SessionView:
        """Lease a phone for a new session. Raises ``UnknownDeviceProfile`` (422) and ``NoDeviceAvailable`` (503);
        on a personal phone ``PersonalPhoneNotFound`` (404: not the caller's), ``PersonalPhoneBusy`` (503:
        still held by another task or session after ``wait_s``), ``PersonalPhoneWakeFailed`` (502)."""
        match = profile_match(spec.device_profile, self.profiles)
        await check_own_phone(self.personal_phones, principal, spec.personal_phone_id)
        now = utcnow()
        row = DeviceSession(
            id=uuid.uuid4(), created_at=now, tenant_id=principal.tenant_id, user_id=principal.user_id,
            state=SessionState.ACTIVE, ttl_s=spec.ttl_s, personal_phone_id=spec.personal_phone_id,
            # Past the wait too, so the sweeper cannot expire a session still waiting for its phone.
            expires_at=now + dt.timedelta(seconds=spec.ttl_s + spec.wait_s),
        )  # fmt: skip
        async with self.db.transaction(write=True) as db_session:
            # In the inserting transaction (the tenant's row locked): two sessions racing for the
            # last phone of a quota are counted one after the other.
            over = await quota_refusal(db_session, principal.tenant_id, self.quotas, "session")
            if over is not None:
                raise QuotaExceeded(
                    f"{over}; close a session or let a task end first",
                    retry_after_s=_quota_retry_after_s(over, now),
                )
            db_session.add(row)
        holder = session_holder(row.id)
        try:
            async with unavailable_as_error():
                if spec.personal_phone_id is not None:
                    # Waits for it to be free (wait_s), then for its wake (personal_phones.wake_timeout_s).
                    personal = await PersonalPhoneLeases(self.leases).wait_acquire(
                        spec.personal_phone_id, holder=holder, tenant_id=principal.tenant_id,
                        session_id=row.id, ttl_s=spec.ttl_s + self.lease_grace_s, timeout_s=spec.wait_s,
                        wake_timeout_s=self.wake_timeout_s,
                    )  # fmt: skip
                    grant = personal.grant
                else:
                    grant = await self.leases.wait_acquire(
                        holder=holder, tenant_id=principal.tenant_id, session_id=row.id, profile=match,
                        ttl_s=spec.ttl_s + self.lease_grace_s, timeout_s=spec.wait_s,
                    )  # fmt: skip
        except BaseException:
            await self._discard(row.id)  # nobody saw it: no phone, no event
            raise
        expires = min(grant.expires_at - dt.timedelta(seconds=self.lease_grace_s), self._end_of_life(row))
        try:
            async with self.db.transaction() as db_session:
                result = await db_session.execute(
                    update(DeviceSession)
                    .where(DeviceSession.id == row.id, DeviceSession.state == SessionState.ACTIVE)
                    .values(device_id=grant.device_id, expires_at=expires)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    raise InvalidTransition(
                        f"session {row.id} ended while it waited for a phone",
                        current="ended", requested="create",
                    )  # fmt: skip
                payload = {
                    "device_id": str(grant.device_id),
                    "ttl_s": spec.ttl_s,
                    "expires_at": expires.isoformat(),
                }
                await _event(db_session, principal.tenant_id, row.id, "session.created", payload)
        except BaseException:
            # The row keeps no device (reads hide it; it expires); the phone goes back at once.
            await self._release(grant.lease_id, holder, CLOSED_REASON, quietly=True)
            raise
        logger.info(
            "session created",
            extra={
                "session_id": str(row.id),
                "device_id": str(grant.device_id),
                "lease_id": str(grant.lease_id),
            },
        )
        view = await self.get(principal, row.id)
        if self.recorders is not None and view.device is not None:
            self.recorders.start(row.id, principal.tenant_id, view.device)
        return view

    async def get(self, principal: Principal, session_id: uuid.UUID) -> SessionView:
        """The tenant's session (expired now if it is past due); raises ``SessionNotFound``."""
        view = await self._load(principal, session_id)
        if session_due(view.session):
            await self._expire(view)
            view = await self._load(principal, session_id)
        return view

    async def list(
        self, principal: Principal, *, state: SessionState | None, limit: int, cursor: str | None
    ) -> Page[SessionView]:
        """The tenant's sessions, newest first, ``limit`` at a time; raises ``InvalidCursor``."""
        await self.expire_due(tenant_id=principal.tenant_id)
        query = _visible(principal)
        if state is not None:
            query = query.where(DeviceSession.state == state)
        query = newest_first(query, DeviceSession, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            rows = (await db_session.execute(query)).all()
        views = [SessionView(row.DeviceSession, row.Device) for row in rows]
        return time_page(views, limit, lambda view: view.session)

    async def keepalive(self, principal: Principal, session_id: uuid.UUID) -> SessionView:
        """Heartbeat the lease and extend ``expires_at`` to now + ``ttl_s``.

        Raises ``SessionNotFound``, or ``InvalidTransition`` (409) when the session is closed or
        expired — also when it expires by this call's own reckoning (past due, or its lease lost).
        """
        view = await self.get(principal, session_id)
        current = view.session
        _require_active(current, "keep alive")
        holder = session_holder(current.id)
        lease_id = await self._lease_id(view)
        async with unavailable_as_error():
            alive = lease_id is not None and await self.leases.heartbeat(
                lease_id, holder, current.ttl_s + self.lease_grace_s
            )
        if not alive:
            # The phone is gone (reaped, or released by a concurrent close): the session is over.
            await self._expire(view, require_due=False)
            _require_active((await self._load(principal, session_id)).session, "keep alive")
        expires = self._deadline(current, utcnow())
        async with self.db.transaction() as db_session:
            result = await db_session.execute(
                update(DeviceSession)
                .where(DeviceSession.id == current.id, DeviceSession.state == SessionState.ACTIVE)
                .values(expires_at=expires)
                .execution_options(synchronize_session=False)
            )
        view = await self._load(principal, session_id)
        if result.rowcount != 1:
            _require_active(view.session, "keep alive")  # ended meanwhile: 409 with its state
        return view

    async def touch(self, tenant_id: uuid.UUID, session_id: uuid.UUID) -> None:
        """Activity on the session's phone — a live viewer's message, a device API call — keeps it
        alive as a keepalive does (its idle timeout counts from the last activity), at most every
        few seconds; a session that ended or is due is left as it is (the sweeper's)."""
        async with self.db.transaction() as db_session:
            row = await db_session.get(DeviceSession, session_id)
        if row is not None and row.tenant_id == tenant_id:
            await self._touch_row(row)

    async def _touch_row(self, row: DeviceSession) -> None:
        """``touch`` of a session row already read (a device API call has it: no second read)."""
        if row.state != SessionState.ACTIVE or row.expires_at is None:
            return
        now = utcnow()
        if row.expires_at <= now or self._deadline(row, now) - row.expires_at < _touch_every(row):
            return
        # The activity's session is the tenant's (checked above); keepalive reads it as the tenant does.
        principal = Principal(key_id=row.id, tenant_id=row.tenant_id, user_id=row.user_id or row.id,
                              role=UserRole.MEMBER)  # fmt: skip
        with contextlib.suppress(InvalidTransition, SessionNotFound, NoLiveDevice):
            await self.keepalive(principal, row.id)

    def _end_of_life(self, row: DeviceSession) -> dt.datetime:
        """When the session ends however active it is (``sessions.max_lifetime_s`` past its creation)."""
        if self.max_lifetime_s is None:
            return dt.datetime.max.replace(tzinfo=dt.UTC)
        return row.created_at + dt.timedelta(seconds=self.max_lifetime_s)

    def _deadline(self, row: DeviceSession, now: dt.datetime) -> dt.datetime:
        """``ttl_s`` from ``now``, never past the session's end of life."""
        return min(now + dt.timedelta(seconds=row.ttl_s), self._end_of_life(row))

    async def close(self, principal: Principal, session_id: uuid.UUID) -> SessionView:
        """Release the phone and mark the session ``closed``; an ended session is answered as it is."""
        view = await self.get(principal, session_id)
        if view.session.state != SessionState.ACTIVE:
            return view
        if self.recorders is not None:
            # Finished while the phone is still held: the recording is complete once ``closed`` shows.
            await self.recorders.stop(view.session.id)
        lease_id = await self._lease_id(view)
        if lease_id is not None:
            # Released first: a failure below leaves an active session without a phone (a retried
            # DELETE ends it), never a closed one still holding a phone.
            await self._release(lease_id, session_holder(view.session.id), CLOSED_REASON)
        await self._end(view.session, SessionState.CLOSED)
        return await self._load(principal, session_id)

    async def holding(self, principal: Principal, session_id: uuid.UUID) -> SessionView:
        """The tenant's active session with the phone it holds now, for a call on that phone.

        Raises ``SessionNotFound`` (also for another tenant's), ``NoLiveDevice`` (409) when the
        session ended or its lease is gone.
        """
        view = await self.get(principal, session_id)
        if view.session.state != SessionState.ACTIVE:
            raise NoLiveDevice(f"session {session_id} is {view.session.state.value}; it holds no phone")
        if await self._lease_id(view) is None:
            raise NoLiveDevice(f"session {session_id} holds no phone right now (its lease ended)")
        return view

    async def record_action(self, view: SessionView, action: dict[str, Any]) -> None:
        """A ``session.action`` event: what a device call did to the session's phone (its timeline)."""
        device_id = str(view.device.id) if view.device is not None else None
        async with self.db.transaction() as db_session:
            await _event(db_session, view.session.tenant_id, view.session.id, "session.action",
                         {"device_id": device_id, "action": action})  # fmt: skip
        await self._touch_row(view.session)  # an agent's activity (read under the caller's tenant)

    async def expire_due(
        self, *, tenant_id: uuid.UUID | None = None, now: dt.datetime | None = None, limit: int = 100
    ) -> list[uuid.UUID]:
        """Expire active sessions past ``expires_at`` (of one tenant, or all); their ids, oldest due first."""
        now = now or utcnow()
        query = (
            select(DeviceSession, Device)
            .outerjoin(Device, Device.id == DeviceSession.device_id)
            .where(DeviceSession.state == SessionState.ACTIVE, DeviceSession.expires_at <= now)
        )
        if tenant_id is not None:
            query = query.where(DeviceSession.tenant_id == tenant_id)
        async with self.db.transaction() as db_session:
            rows = (await db_session.execute(query.order_by(DeviceSession.expires_at).limit(limit))).all()
        expired = []
        for row in rows:
            if await self._expire(SessionView(row.DeviceSession, row.Device), now=now):
                expired.append(row.DeviceSession.id)
        if expired:
            logger.info("sessions expired", extra={"count": len(expired)})
        return expired

    # --- the steps ----------------------------------------------------------------------------

    async def _expire(
        self, view: SessionView, *, require_due: bool = True, now: dt.datetime | None = None
    ) -> bool:
        """Mark the session expired (fenced on its expiry unless ``require_due``), then release its phone."""
        if not await self._end(
            view.session, SessionState.EXPIRED, due_at=(now or utcnow()) if require_due else None
        ):
            return False
        lease_id = await self._lease_id(view)
        if lease_id is not None:
            # A failure here is not lost: the lease expires lease_grace_s later and the reaper takes it.
            await self._release(lease_id, session_holder(view.session.id), EXPIRED_REASON, quietly=True)
        logger.info("session expired", extra={"session_id": str(view.session.id)})
        return True

    async def _end(
        self, row: DeviceSession, state: SessionState, *, due_at: dt.datetime | None = None
    ) -> bool:
        """active → ``state`` with its event, in one transaction; False if it was no longer active (or not due)."""
        now = utcnow()
        guard = [DeviceSession.id == row.id, DeviceSession.state == SessionState.ACTIVE]
        if due_at is not None:
            guard.append(DeviceSession.expires_at <= due_at)
        async with self.db.transaction() as db_session:
            result = await db_session.execute(
                update(DeviceSession)
                .where(*guard)
                .values(state=state, closed_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                return False
            if row.device_id is not None:  # a session that never got a phone was never shown: no event
                await _event(
                    db_session,
                    row.tenant_id,
                    row.id,
                    f"session.{state.value}",
                    {"device_id": str(row.device_id)},
                )
        return True

    async def _lease_id(self, view: SessionView) -> uuid.UUID | None:
        """The session's open lease, read from its device row (indexed; the lease log is not)."""
        if view.device is None:
            return None
        async with self.db.transaction() as db_session:
            return await db_session.scalar(
                select(Device.lease_id).where(
                    Device.id == view.device.id,
                    Device.state == DeviceState.LEASED,
                    Device.lease_holder == session_holder(view.session.id),
                )
            )

    async def _release(self, lease_id: uuid.UUID, holder: str, reason: str, *, quietly: bool = False) -> None:
        try:
            async with unavailable_as_error():
                await self.leases.release(lease_id, holder, reason)
        except DatabaseUnavailable:
            if not quietly:
                raise
            logger.warning("lease not released; it expires on its own", extra={"lease_id": str(lease_id)})

    async def _discard(self, session_id: uuid.UUID) -> None:
        try:
            async with self.db.transaction() as db_session:
                await db_session.execute(
                    delete(DeviceSession).where(
                        DeviceSession.id == session_id, DeviceSession.device_id.is_(None)
                    )
                )
        except DatabaseUnavailable:
            # Left without a phone: hidden from reads, and the sweeper expires it.
            logger.warning(
                "could not delete a session that got no phone", extra={"session_id": str(session_id)}
            )

    async def _load(self, principal: Principal, session_id: uuid.UUID) -> SessionView:
        async with self.db.transaction() as db_session:
            row = (
                await db_session.execute(_visible(principal).where(DeviceSession.id == session_id))
            ).first()
        if row is None:
            raise SessionNotFound(session_id)
        return SessionView(row.DeviceSession, row.Device)


def _visible(principal: Principal) -> Any:
    """The tenant's sessions that got a phone (one still waiting for its phone is not shown)."""
    return (
        select(DeviceSession, Device)
        .join(Device, Device.id == DeviceSession.device_id)
        .where(DeviceSession.tenant_id == principal.tenant_id)
    )


def _touch_every(row: DeviceSession) -> dt.timedelta:
    # Activity moves expires_at only once it would move it this much: not a write per message.
    return dt.timedelta(seconds=min(10.0, row.ttl_s / 10))


def session_due(row: DeviceSession) -> bool:
    """Active but past its ``expires_at``: ended, though the sweeper may not have written it yet."""
    return row.state == SessionState.ACTIVE and row.expires_at is not None and row.expires_at <= utcnow()


def _require_active(row: DeviceSession, verb: str) -> None:
    if row.state != SessionState.ACTIVE:
        raise InvalidTransition(
            f"session {row.id} is {row.state.value}; you can {verb} only while it is active",
            current=row.state.value,
            requested=verb.replace(" ", ""),
        )


async def _event(
    db_session: DbSession, tenant_id: uuid.UUID, session_id: uuid.UUID, type_: str, payload: dict[str, Any]
) -> None:
    await db_session.execute(
        insert(Event).values(
            tenant_id=tenant_id, task_id=None, type=type_, payload={"session_id": str(session_id), **payload},
            created_at=utcnow(),
        )
    )  # fmt: skip
