"""Leases: one atomic update hands an idle device to one holder until its expiry (control-plane.md).

- ``acquire``: PostgreSQL runs ONE statement,
  ``UPDATE devices SET state='leased', lease_… WHERE id = (SELECT id FROM devices WHERE state='idle'
  [AND profile @> :profile] ORDER BY updated_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING …``:
  concurrent acquirers skip each other's locked rows instead of queueing on them, so N acquirers
  over M devices get min(N, M) distinct grants at once. SQLite has one writer at a time: inside
  ``BEGIN IMMEDIATE`` it reads the idle devices (oldest ``updated_at`` first), matches the profile
  in Python (``profile_matches``, the semantics of JSONB ``@>``; json_extract cannot say "this list
  contains those apps") and updates the first match. Either way the ``leases`` row and the
  ``device.leased`` event are written in the same transaction.
- ``heartbeat`` extends an unexpired lease; False means it is lost and the holder must stop.
- ``release``, the reaper (``reap_expired``) and ``end_leases_held_by`` (a lost worker's, by the
  sweeper or a new claim) end a lease: the device goes to ``resetting``, never straight to
  ``idle`` — the pool manager resets it first.
- A device whose ``labels`` hold ``"drain": true`` (JSON true; an admin's drain) is never picked: it
  keeps its current lease, is reset and health-checked as usual, and stays out of service.
- ``avoid`` (device ids) keeps ``acquire``/``wait_acquire`` off those devices: a task retried
  because its phone failed goes to another one. ``serves_besides`` says whether any other device
  in service matches at all; where none does, the caller may lease the avoided one (after its reset).
- ``wait_acquire`` retries on wake-ups (``signals.py``: a device became idle) with a deadline, and
  polls every ``poll_s`` as well: without Redis, an idle device made idle by another *process* is
  seen at most ``poll_s`` late; with Redis, only a lost pub/sub message costs that.

Times are this host's UTC clock (``utcnow``), on both databases: hosts sharing a database must keep
their clocks in sync (NTP) to well under the lease TTL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, not_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from device_pool.errors import NoDeviceAvailable
from device_pool.pool.devices import DeviceStore
from device_pool.pool.signals import IDLE, RELEASED, Signal
from orchestrator.db import DbSession, DbSessions, Device, DeviceState, Event, Lease, utcnow

logger = logging.getLogger(__name__)

EXPIRED = "expired"  # release_reason of a lease the reaper ended
# release_reason of a lease whose run ended because the phone stopped answering: the pool manager
# quarantines a phone whose last leases all ended so, though its resets pass (manager.py).
DEVICE_ERROR = "device_error"
# The label an admin's drain sets (a JSON true, which API and provider labels, strings, cannot be):
# acquire skips such a device, so it finishes its current lease and is never leased again.
DRAIN_LABEL = "drain"
# The label a pool manager with a ``pool_id`` puts on its devices' rows (manager.py): which pool
# (host) runs the device, so a personal phone's wake picks a device of its home pool only.
POOL_LABEL = "pool_id"


@dataclass(frozen=True)
class LeaseGrant:
    """A device leased to ``holder`` until ``expires_at`` (heartbeat to keep it)."""

    lease_id: uuid.UUID
    device_id: uuid.UUID
    serial: str
    provider: str
    profile: dict[str, Any]
    holder: str
    tenant_id: uuid.UUID | None
    task_id: uuid.UUID | None
    session_id: uuid.UUID | None
    acquired_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class EndedLease:
    """A lease that ``release`` or the reaper ended; its device is now ``resetting``."""

    lease_id: uuid.UUID
    device_id: uuid.UUID
    holder: str
    tenant_id: uuid.UUID | None
    task_id: uuid.UUID | None
    reason: str


def profile_matches(have: Any, want: Any) -> bool:
    """JSONB containment (``have @> want``): objects by key, arrays contain every wanted element, scalars equal."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            k in have and profile_matches(have[k], v) for k, v in want.items()
        )
    if isinstance(want, list):
        return isinstance(have, list) and all(any(profile_matches(h, w) for h in have) for w in want)
    if isinstance(want, bool) or isinstance(have, bool):
        # JSON tells true from 1; Python's == does not.
        return type(have) is type(want) and have == want
    return have == want


class LeaseStore(DeviceStore):
    """Leases on the ``devices``/``leases`` tables of PostgreSQL or SQLite (``dialect``).

    ``signal`` carries wake-ups (``LocalSignal`` in-process by default, ``RedisSignal`` across
    processes); ``poll_s`` bounds how late ``wait_acquire`` sees a device freed elsewhere when a
    wake-up does not reach it.
    """

    def __init__(
        self,
        sessions: DbSessions,
        dialect: str,
        *,
        signal: Signal | None = None,
        poll_s: float = 2.0,
    ) -> None:
        super().__init__(sessions, dialect, signal=signal)
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self.poll_s = poll_s

    async def acquire(
        self,
        *,
        holder: str,
        tenant_id: uuid.UUID | None,
        task_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        profile: dict[str, Any] | None = None,
        ttl_s: float,
        avoid: Collection[uuid.UUID] = (),
    ) -> LeaseGrant | None:
        """Lease the idle device (matching ``profile``, not in ``avoid``) idle longest, for ``ttl_s`` s;
        None if there is none."""
        _check_ttl(ttl_s)
        avoid = list(avoid)
        async with self._tx() as db_session:
            if self.is_sqlite:
                target = await self._sqlite_pick(db_session, profile, avoid)
            else:
                target = _pg_pick(profile, avoid)
            if target is None:
                return None
            grant = await self._lease(
                db_session, target, holder=holder, tenant_id=tenant_id, task_id=task_id,
                session_id=session_id, ttl_s=ttl_s,
            )  # fmt: skip
        if grant is not None:
            logger.info(
                "device leased", extra=_log(grant.device_id, grant.lease_id, holder=holder, serial=grant.serial)
            )
        return grant

    async def _lease(
        self,
        db_session: DbSession,
        target: Any,
        *,
        holder: str,
        tenant_id: uuid.UUID | None,
        task_id: uuid.UUID | None,
        session_id: uuid.UUID | None,
        ttl_s: float,
        **values: Any,
    ) -> LeaseGrant | None:
        """Lease the idle device ``target`` (an id, or a subquery picking one) in the caller's
        transaction, with its lease row and event; ``values``: more columns of the device row."""
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        lease_id = uuid.uuid4()
        result = await db_session.execute(
            update(Device)
            .where(Device.id == target, Device.state == DeviceState.IDLE)
            .values(
                state=DeviceState.LEASED,
                lease_id=lease_id,
                lease_holder=holder,
                lease_expires_at=expires,
                updated_at=now,
                **values,
            )
            .returning(Device.id, Device.serial, Device.provider, Device.profile)
            .execution_options(synchronize_session=False)
        )
        row = result.first()
        if row is None:
            return None
        # Stamped once the row is ours, not before the lock wait: the lease log must show this
        # lease starting after the previous one on the device ended (whose release stamped
        # released_at before committing). The expiry keeps the earlier clock: a shorter lease.
        now = utcnow()
        grant = LeaseGrant(
            lease_id=lease_id, device_id=row.id, serial=row.serial, provider=row.provider,
            profile=dict(row.profile or {}), holder=holder, tenant_id=tenant_id, task_id=task_id,
            session_id=session_id, acquired_at=now, expires_at=expires,
        )  # fmt: skip
        lease = {
            "id": lease_id, "device_id": row.id, "tenant_id": tenant_id, "holder": holder,
            "task_id": task_id, "session_id": session_id, "acquired_at": now, "expires_at": expires,
        }  # fmt: skip
        # No serial: the event reaches the tenant (events, webhooks), and a phone's ADB address is
        # the operator's to see (docs/security.md, "ADB tunnel").
        payload = {
            "device_id": str(row.id), "lease_id": str(lease_id), "holder": holder,
            "expires_at": expires.isoformat(),
        }  # fmt: skip
        # Core inserts, not session.add: the unit of work's flush costs more than the statements.
        await db_session.execute(insert(Lease).values(**lease))
        await _events(db_session, "device.leased", [(tenant_id, task_id, payload)])
        return grant

    async def wait_acquire(
        self,
        *,
        holder: str,
        tenant_id: uuid.UUID | None,
        task_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        profile: dict[str, Any] | None = None,
        ttl_s: float,
        timeout_s: float,
        avoid: Collection[uuid.UUID] = (),
    ) -> LeaseGrant:
        """``acquire``, waiting up to ``timeout_s`` s for a device to become idle; raises NoDeviceAvailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            # Armed before looking, so a device made idle between the look and the wait wakes us.
            token = await self.signal.arm(IDLE)
            grant = await self.acquire(
                holder=holder, tenant_id=tenant_id, task_id=task_id, session_id=session_id,
                profile=profile, ttl_s=ttl_s, avoid=avoid,
            )  # fmt: skip
            if grant is not None:
                return grant
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoDeviceAvailable(
                    f"no idle device{' matching ' + repr(profile) if profile else ''} "
                    f"came free within {timeout_s:g} s",
                    context={"profile": profile, "timeout_s": timeout_s, "holder": holder},
                )
            await self.signal.wait(token, min(remaining, self.poll_s))

    async def serves_besides(self, profile: dict[str, Any] | None, besides: Collection[uuid.UUID]) -> bool:
        """Whether a device in service (not unhealthy, retired or drained) other than ``besides``
        matches ``profile``, whatever its state now (it may be leased or resetting)."""
        query = select(Device.id, Device.profile, Device.labels).where(
            Device.state.not_in((DeviceState.UNHEALTHY, DeviceState.RETIRED))
        )
        if besides:
            query = query.where(Device.id.not_in(list(besides)))
        async with self._sessions() as db_session:
            rows = (await db_session.execute(query)).all()
        # Matched here on both databases: a pool is hundreds of rows, and this runs once per retry.
        return any(
            (row.labels or {}).get(DRAIN_LABEL) is not True
            and profile_matches(row.profile or {}, profile or {})
            for row in rows
        )

    async def heartbeat(self, lease_id: uuid.UUID, holder: str, ttl_s: float) -> bool:
        """Extend the lease to now + ``ttl_s``; False if it expired, was reaped or released (stop using the device)."""
        _check_ttl(ttl_s)
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl_s)
        async with self._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(
                    Device.lease_id == lease_id,
                    Device.lease_holder == holder,
                    Device.state == DeviceState.LEASED,
                    # Past its expiry the lease is the reaper's, even if the reaper has not run yet.
                    Device.lease_expires_at > now,
                )
                .values(lease_expires_at=expires)
                .returning(Device.id)
                .execution_options(synchronize_session=False)
            )
            device_id = result.scalar_one_or_none()
            if device_id is None:
                logger.warning("heartbeat for a lost lease", extra=_log(None, lease_id, holder=holder))
                return False
            await db_session.execute(
                update(Lease)
                .where(Lease.id == lease_id)
                .values(expires_at=expires, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
        return True

    async def release(self, lease_id: uuid.UUID, holder: str, reason: str = "released") -> bool:
        """End the lease; the device goes to ``resetting``. False if ``holder`` does not hold it (any more)."""
        now = utcnow()
        async with self._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(
                    Device.lease_id == lease_id,
                    Device.lease_holder == holder,
                    Device.state == DeviceState.LEASED,
                )
                .values(**_ENDED, updated_at=now)
                .returning(Device.id)
                .execution_options(synchronize_session=False)
            )
            device_id = result.scalar_one_or_none()
            if device_id is None:
                logger.warning("release of a lease not held", extra=_log(None, lease_id, holder=holder))
                return False
            await _close_leases(db_session, {lease_id: device_id}, now, reason)
        logger.info("device released", extra=_log(device_id, lease_id, holder=holder, reason=reason))
        await self.signal.notify(RELEASED)
        return True

    async def reap_expired(self, now: dt.datetime | None = None) -> list[EndedLease]:
        """End every lease past its expiry at ``now`` (reason ``expired``); their devices go to ``resetting``."""
        now = now or utcnow()
        async with self._tx() as db_session:
            query = select(Device.id, Device.lease_id).where(
                Device.state == DeviceState.LEASED, Device.lease_expires_at <= now
            )
            if not self.is_sqlite:
                # Rows a heartbeat or release is changing right now are skipped: this pass or the next.
                query = query.with_for_update(skip_locked=True)
            expired = {row.lease_id: row.id for row in (await db_session.execute(query)).all()}
            if not expired:
                return []
            await db_session.execute(
                update(Device)
                .where(Device.id.in_(list(expired.values())), Device.state == DeviceState.LEASED)
                .values(**_ENDED, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            ended = await _close_leases(db_session, expired, now, EXPIRED)
        for lease in ended:
            logger.warning("lease expired; device reclaimed", extra=_log(lease.device_id, lease.lease_id,
                           holder=lease.holder))  # fmt: skip
        await self.signal.notify(RELEASED)
        return ended

    async def last_release_reasons(self, device_id: uuid.UUID, count: int) -> list[str]:
        """The ``release_reason`` of the device's last ``count`` ended leases, newest first."""
        async with self._sessions() as db_session:
            query = (
                select(Lease.release_reason)
                .where(Lease.device_id == device_id, Lease.released_at.is_not(None))
                .order_by(Lease.released_at.desc(), Lease.id.desc())
                .limit(count)
            )
            return [reason or "" for reason in await db_session.scalars(query)]

    async def lease(self, lease_id: uuid.UUID) -> Lease | None:
        """The lease log row (detached), or None."""
        async with self._sessions() as db_session:
            return await db_session.get(Lease, lease_id)

    async def _sqlite_pick(
        self,
        db_session: DbSession,
        profile: dict[str, Any] | None,
        avoid: list[uuid.UUID],
        providers: Collection[str] | None = None,
        pool: str | None = None,
    ) -> uuid.UUID | None:
        # The whole idle list is read (id and profile only) when matching a profile: a pool is
        # hundreds of rows at most, and BEGIN IMMEDIATE already serialises lessees on SQLite.
        # A device holding a personal phone's data (ready for it) is never anyone else's.
        query = select(Device.id, Device.profile).where(
            Device.state == DeviceState.IDLE, Device.personal_phone_id.is_(None)
        )
        if avoid:
            query = query.where(Device.id.not_in(avoid))
        if providers is not None:
            query = query.where(Device.provider.in_(list(providers)))
        if pool is not None:
            query = query.where(func.json_extract(Device.labels, f"$.{POOL_LABEL}") == pool)
        # json_type is 'true' only for a JSON true (not 1, not "true"), like PostgreSQL's @> below.
        drained = func.coalesce(func.json_type(Device.labels, f"$.{DRAIN_LABEL}"), "") == "true"
        query = query.where(not_(drained)).order_by(Device.updated_at, Device.id)
        if not profile:
            return await db_session.scalar(query.with_only_columns(Device.id).limit(1))
        for row in (await db_session.execute(query)).all():
            if profile_matches(row.profile or {}, profile):
                return row.id
        return None


# What a device row holds once its lease has ended.
_ENDED: dict[str, Any] = {
    "state": DeviceState.RESETTING,
    "lease_id": None,
    "lease_holder": None,
    "lease_expires_at": None,
}


async def end_leases_held_by(
    db_session: DbSession, holder: str, now: dt.datetime, reason: str
) -> list[EndedLease]:
    """End ``holder``'s leases in the caller's transaction (devices → ``resetting``): a lost run's,
    by whoever takes its task over in that transaction, so the phone is reset now, not at expiry."""
    query = select(Device.id, Device.lease_id).where(
        Device.lease_holder == holder, Device.state == DeviceState.LEASED
    )
    held = {row.lease_id: row.id for row in (await db_session.execute(query.with_for_update())).all()}
    if held:
        await db_session.execute(
            update(Device).where(Device.id.in_(list(held.values())), Device.lease_holder == holder)
            .values(**_ENDED, updated_at=now).execution_options(synchronize_session=False)
        )  # fmt: skip
    ended = await _close_leases(db_session, held, now, reason) if held else []
    for lease in ended:
        logger.warning(
            "lease ended: its holder was lost", extra=_log(lease.device_id, lease.lease_id, holder=holder)
        )
    return ended


async def _close_leases(
    db_session: DbSession, leases: dict[uuid.UUID, uuid.UUID], now: dt.datetime, reason: str
) -> list[EndedLease]:
    """Mark the lease rows released and write one ``device.released`` event each."""
    result = await db_session.execute(
        update(Lease)
        .where(Lease.id.in_(list(leases)), Lease.released_at.is_(None))
        .values(released_at=now, release_reason=reason)
        .returning(Lease.id, Lease.device_id, Lease.holder, Lease.tenant_id, Lease.task_id)
        .execution_options(synchronize_session=False)
    )
    ended = [
        EndedLease(row.id, row.device_id, row.holder, row.tenant_id, row.task_id, reason)
        for row in result.all()
    ]
    payloads = [
        (e.tenant_id, e.task_id, {"device_id": str(e.device_id), "lease_id": str(e.lease_id),
                                  "holder": e.holder, "reason": reason})
        for e in ended
    ]  # fmt: skip
    await _events(db_session, "device.released", payloads)
    return ended


def _pg_pick(
    profile: dict[str, Any] | None,
    avoid: list[uuid.UUID],
    providers: Collection[str] | None = None,
    pool: str | None = None,
) -> Any:
    """The locked-or-skipped idle row as a scalar subquery (PostgreSQL); ``providers``: only
    theirs; ``pool``: only that pool's (``POOL_LABEL``)."""
    drained = Device.labels.bool_op("@>")(bindparam("drain_label", {DRAIN_LABEL: True}, type_=JSONB))
    query = select(Device.id).where(
        Device.state == DeviceState.IDLE, Device.personal_phone_id.is_(None), not_(drained)
    )
    if avoid:
        query = query.where(Device.id.not_in(avoid))
    if providers is not None:
        query = query.where(Device.provider.in_(list(providers)))
    if pool is not None:
        query = query.where(Device.labels.bool_op("@>")(bindparam("pool_label", {POOL_LABEL: pool}, type_=JSONB)))
    if profile:
        query = query.where(Device.profile.bool_op("@>")(bindparam("want_profile", profile, type_=JSONB)))
    return (
        query.order_by(Device.updated_at, Device.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )


async def _events(
    db_session: DbSession,
    type_: str,
    rows: list[tuple[uuid.UUID | None, uuid.UUID | None, dict[str, Any]]],
) -> None:
    """Insert one event per (tenant_id, task_id, payload) row that names a tenant."""
    # events.tenant_id is NOT NULL: a lease without a tenant (an operator's) is logged, not evented.
    values = [
        {"tenant_id": tenant_id, "task_id": task_id, "type": type_, "payload": payload}
        for tenant_id, task_id, payload in rows
        if tenant_id is not None
    ]
    if values:
        await db_session.execute(insert(Event), values)


def _log(device_id: uuid.UUID | None, lease_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {"device_id": None if device_id is None else str(device_id), "lease_id": str(lease_id), **extra}


def _check_ttl(ttl_s: float) -> None:
    if not ttl_s > 0:
        raise ValueError(f"ttl_s must be positive, not {ttl_s!r}")


__all__ = [
    "DRAIN_LABEL", "EXPIRED", "EndedLease", "LeaseGrant", "LeaseStore", "end_leases_held_by", "profile_matches",
]  # fmt: skip
