"""Personal phones in the pool: a device leased on a personal phone's data, kept after the lease.

A personal phone's data lives apart from every device (the provider's ``PersonalData``: a directory
per phone for the virtual phone, a Docker volume for redroid). ``devices.personal_phone_id`` says
which personal phone's data a device runs now; such a device is never leased to anyone else
(``acquire``'s picks skip it) and never made idle for the pool (``mark_idle`` refuses it) until the
pool manager has detached the data and put the device back in factory state.

The acquirer's side (``PersonalPhoneLeases``), one transaction each, on the personal phone's row
(locked on PostgreSQL; SQLite's one writer serialises it):

- ``ready`` (a device runs it, idle): that device is leased → ``in_use``;
- ``asleep`` or ``failed``: an idle pooled device (matching its profile, and of its home pool
  where it has one: ``home_pool``) is leased with the phone's id on it → ``waking``; the pool manager attaches the data (``PersonalPhoneKeeper.wake``)
  → ``in_use``, and the acquirer, which waited for that, gets the device;
- ``in_use``, ``waking``, ``sleeping``: busy; the acquirer waits (a task: ``personal_phone_busy``).

So a personal phone is on at most one device, and held by at most one task or session, at a time.

The pool manager's side (``PersonalPhoneKeeper``, ``personal_keeper.py``), from its reconcile pass:

- a device leased for a ``waking`` phone: attach its data, check it → phone ``in_use``; where the
  provider's data is local to the pool (``personal_data_local``), the phone's first wake records
  this pool as its ``home_pool`` first, and a phone whose home is another pool is refused;
- a device whose lease ended while it ran a phone that was ``in_use`` on it: checked, kept
  (idle, still the phone's) → phone ``ready``, ``last_used_at`` now. Anything else (a failed
  wake, a deleted phone, a failed check, a phone going to sleep): the data is detached → the
  phone ``asleep`` (a failed wake stays ``failed``), and the device goes on to its factory reset;
- a ``ready`` phone unused for ``idle_stop_s``, or deleted: its idle device → resetting, the phone
  → ``sleeping``; the step above then detaches it;
- a deleted phone on no device: its data removed, its row deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from device_pool.errors import PersonalPhoneBusy, PersonalPhoneWakeFailed
from device_pool.pool.leases import LeaseGrant, LeaseStore, _pg_pick
from device_pool.pool.signals import IDLE, RELEASED
from orchestrator.db import Device, PersonalPhone, PersonalPhoneState, utcnow

logger = logging.getLogger(__name__)

_AWAKE_POLL_S = 0.1  # how often an acquirer re-reads a waking phone (the manager also signals)
# The providers whose devices can run a personal phone's data (``PersonalData``): a phone an admin
# registered or a static ADB phone is never picked for one.
PERSONAL_PROVIDERS = ("sim", "redroid")


@dataclass(frozen=True)
class PersonalGrant:
    """A device leased on a personal phone; ``wake_s``: how long its wake took (None: it was ready)."""

    grant: LeaseGrant
    wake_s: float | None


class PersonalPhoneLeases:
    """Leases on personal phones, over the pool's ``LeaseStore`` (the acquirer's side)."""

    def __init__(self, store: LeaseStore) -> None:
        self.store = store

    async def acquire(
        self,
        personal_phone_id: uuid.UUID,
        *,
        holder: str,
        tenant_id: uuid.UUID,
        task_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        ttl_s: float,
    ) -> tuple[LeaseGrant, bool] | None:
        """Lease the phone's device: (grant, True) when it was ready, (grant, False) when it must
        first wake; None when it is busy or no pooled device is idle. Raises
        ``PersonalPhoneWakeFailed`` for a phone deleted (or never made) in this tenant."""
        store = self.store
        async with store._tx() as db_session:
            query = select(PersonalPhone).where(
                PersonalPhone.id == personal_phone_id,
                PersonalPhone.tenant_id == tenant_id,
                PersonalPhone.deleted_at.is_(None),
            )
            if not store.is_sqlite:
                query = query.with_for_update()
            phone = await db_session.scalar(query)
            if phone is None:
                raise PersonalPhoneWakeFailed(
                    f"personal phone {personal_phone_id} was deleted",
                    context={"personal_phone_id": str(personal_phone_id)},
                )
            lease = {"holder": holder, "tenant_id": tenant_id, "task_id": task_id, "session_id": session_id,
                     "ttl_s": ttl_s}  # fmt: skip
            now = utcnow()
            if phone.state == PersonalPhoneState.READY and phone.device_id is not None:
                # Only its own device: the row's personal_phone_id must still name it.
                target = (
                    select(Device.id)
                    .where(Device.id == phone.device_id, Device.personal_phone_id == phone.id)
                    .scalar_subquery()
                )
                grant = await store._lease(db_session, target, **lease)
                if grant is None:
                    return None  # the manager is stopping it (idle → resetting) just now
                await set_phone(
                    db_session, phone.id, state=PersonalPhoneState.IN_USE, holder=holder, updated_at=now
                )
                ready = True
            elif phone.state in (PersonalPhoneState.ASLEEP, PersonalPhoneState.FAILED):
                profile, home = phone.device_profile, phone.home_pool
                # A phone with a home pool wakes only on that pool's devices: its data is there.
                if store.is_sqlite:
                    target = await store._sqlite_pick(db_session, profile, [], PERSONAL_PROVIDERS, home)
                else:
                    target = _pg_pick(profile, [], PERSONAL_PROVIDERS, home)
                if target is None:
                    return None
                grant = await store._lease(db_session, target, personal_phone_id=phone.id, **lease)
                if grant is None:
                    return None
                await set_phone(
                    db_session, phone.id, state=PersonalPhoneState.WAKING, device_id=grant.device_id,
                    holder=holder, woke_at=now, last_error=None, updated_at=now,
                )  # fmt: skip
                ready = False
            else:
                return None
        extra = {"personal_phone_id": str(personal_phone_id), "device_id": str(grant.device_id),
                 "lease_id": str(grant.lease_id), "holder": holder}  # fmt: skip
        logger.info("personal phone leased" if ready else "personal phone waking", extra=extra)
        if not ready:
            await store.signal.notify(RELEASED)  # the pool manager's wake-up: it attaches the data
        return grant, ready

    async def wait_acquire(
        self,
        personal_phone_id: uuid.UUID,
        *,
        holder: str,
        tenant_id: uuid.UUID,
        task_id: uuid.UUID | None = None,
        session_id: uuid.UUID | None = None,
        ttl_s: float,
        timeout_s: float,
        wake_timeout_s: float,
        on_busy: Callable[[], Awaitable[None]] | None = None,
    ) -> PersonalGrant:
        """``acquire``, waiting up to ``timeout_s`` for the phone to be free and then up to
        ``wake_timeout_s`` for it to wake. ``on_busy`` is awaited once, the first time it must wait.

        Raises ``PersonalPhoneBusy`` (still held, or no device came free, at the deadline),
        ``PersonalPhoneWakeFailed`` (deleted, or its data could not be attached: the lease is then
        released, and the device reset before anyone else gets it).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        told = False
        while True:
            token = await self.store.signal.arm(IDLE)
            got = await self.acquire(
                personal_phone_id, holder=holder, tenant_id=tenant_id, task_id=task_id,
                session_id=session_id, ttl_s=ttl_s,
            )  # fmt: skip
            if got is not None:
                grant, ready = got
                if ready:
                    return PersonalGrant(grant, None)
                try:
                    return PersonalGrant(grant, await self._awake(personal_phone_id, grant, wake_timeout_s))
                except asyncio.CancelledError:
                    # Cancelled mid-wake (the task was): the device goes back now, not at the lease's expiry.
                    await asyncio.shield(self.store.release(grant.lease_id, grant.holder, "cancelled"))
                    raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise PersonalPhoneBusy(
                    f"personal phone {personal_phone_id} stayed in use (or no device came free) "
                    f"for {timeout_s:g} s",
                    context={"personal_phone_id": str(personal_phone_id), "timeout_s": timeout_s},
                )
            if not told and on_busy is not None:
                told = True
                await on_busy()
            await self.store.signal.wait(token, min(remaining, self.store.poll_s))

    async def home_pool(self, personal_phone_id: uuid.UUID) -> str | None:
        """The pool the phone is pinned to while it sleeps (its data is there), or None."""
        async with self.store._sessions() as db_session:
            phone = await db_session.get(PersonalPhone, personal_phone_id)
        if phone is None or phone.state not in (PersonalPhoneState.ASLEEP, PersonalPhoneState.FAILED):
            return None
        return phone.home_pool

    async def _awake(self, personal_phone_id: uuid.UUID, grant: LeaseGrant, timeout_s: float) -> float:
        """Until the manager attached the data (the phone ``in_use`` on this device); its seconds."""
        started = time.monotonic()
        while True:
            token = await self.store.signal.arm(IDLE)
            async with self.store._sessions() as db_session:
                phone = await db_session.get(PersonalPhone, personal_phone_id)
            if (
                phone is not None
                and phone.state == PersonalPhoneState.IN_USE
                and phone.device_id == grant.device_id
            ):
                return time.monotonic() - started
            failed = (
                phone is None
                or phone.state != PersonalPhoneState.WAKING
                or phone.device_id != grant.device_id
            )
            if failed or time.monotonic() - started > timeout_s:
                why = (
                    f"not awake after {timeout_s:g} s"
                    if not failed
                    else (
                        phone.last_error
                        if phone is not None and phone.last_error
                        else "its wake was abandoned"
                    )
                )
                await self.store.release(grant.lease_id, grant.holder, "personal_phone_wake_failed")
                raise PersonalPhoneWakeFailed(
                    f"personal phone {personal_phone_id} could not wake on device {grant.device_id}: {why}",
                    context={"personal_phone_id": str(personal_phone_id), "device_id": str(grant.device_id)},
                )
            await self.store.signal.wait(token, _AWAKE_POLL_S)


async def set_phone(db_session: Any, phone_id: uuid.UUID, **values: Any) -> None:
    await db_session.execute(
        update(PersonalPhone)
        .where(PersonalPhone.id == phone_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


__all__ = ["PersonalGrant", "PersonalPhoneLeases", "set_phone"]
