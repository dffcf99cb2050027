"""The pool manager's side of personal phones: wake, keep, stop and remove them on its provider's
devices (the design is in ``personal.py``'s docstring and docs/personal-phones.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from device_pool.errors import PersonalPhoneWakeFailed, PhoneFleetError
from device_pool.pool.devices import DeviceRecord
from device_pool.pool.leases import LeaseStore
from device_pool.pool.personal import set_phone
from device_pool.pool.signals import IDLE
from device_pool.providers.base import PersonalData, Provider
from orchestrator.db import (
    Device,
    DeviceState,
    PersonalPhone,
    PersonalPhoneState,
    Task,
    TaskStatus,
    WaitingKind,
    utcnow,
)

logger = logging.getLogger(__name__)

# A pooled device in these states serves (or soon will) a task waiting for one: no eviction for it.
_FREE_SOON = (DeviceState.IDLE, DeviceState.RESETTING, DeviceState.PROVISIONING)
_ENDED = tuple(status for status in TaskStatus if status.is_final)


class PersonalPhoneKeeper:
    """The pool manager's side: wake, keep, stop and remove personal phones on ``provider``'s devices."""

    def __init__(
        self,
        store: LeaseStore,
        provider: Provider,
        *,
        idle_stop_s: float,
        op_timeout_s: float,
        pool_id: str | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.pool_id = pool_id
        # Data on this pool's host alone (PersonalData.personal_data_local): a phone woken here is
        # pinned to this pool, its home pool.
        self.pins = bool(getattr(provider, "personal_data_local", False)) and pool_id is not None
        self.idle_stop_s = idle_stop_s
        self.op_timeout_s = op_timeout_s

    async def wake(self, rows: list[DeviceRecord]) -> None:
        """Attach the data of every phone waking on one of ``rows`` (leased to its waiter)."""
        waking = [r for r in rows if r.state == DeviceState.LEASED and r.personal_phone_id is not None]
        if waking:
            await asyncio.gather(*(self._wake(row) for row in waking))

    async def _wake(self, row: DeviceRecord) -> None:
        assert row.personal_phone_id is not None
        phone = await self._phone(row.personal_phone_id)
        if phone is None or phone.state != PersonalPhoneState.WAKING or phone.device_id != row.id:
            return
        extra = {"device_id": str(row.id), "serial": row.serial, "personal_phone_id": str(phone.id)}
        started = time.monotonic()
        error = None
        try:
            if not isinstance(self.provider, PersonalData):
                raise PersonalPhoneWakeFailed(f"provider {self.provider.name!r} cannot run personal phones")
            await self._pin(phone)
            async with asyncio.timeout(self.op_timeout_s):
                await self.provider.attach(row.serial, phone.id)
                health = await self.provider.health(row.serial)
            if not health.ok:
                error = f"health check failed: {health.detail}"
        except (PhoneFleetError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        wake_ms = int((time.monotonic() - started) * 1000)
        now = utcnow()
        values: dict[str, Any] = (
            {"state": PersonalPhoneState.FAILED, "last_error": error[:2000]}
            if error
            else {"state": PersonalPhoneState.IN_USE, "wake_ms": wake_ms, "last_error": None}
        )
        async with self.store._tx() as db_session:
            await db_session.execute(
                update(PersonalPhone)
                .where(PersonalPhone.id == phone.id, PersonalPhone.state == PersonalPhoneState.WAKING,
                       PersonalPhone.device_id == row.id)
                .values(**values, updated_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        if error:
            logger.warning("personal phone did not wake", extra={**extra, "error": error})
        else:
            logger.info("personal phone awake", extra={**extra, "wake_ms": wake_ms})
        await self.store.signal.notify(IDLE)  # its waiter reads the phone again

    async def _pin(self, phone: PersonalPhone) -> None:
        """Record this pool as the phone's home pool before its data is made here (its first wake);
        refuse a phone whose home is another pool: its data is there, not here. Lease picks keep
        such a phone off other pools' devices; this is the last guard."""
        if not self.pins:
            return
        if phone.home_pool is None:
            async with self.store._tx() as db_session:
                await db_session.execute(
                    update(PersonalPhone)
                    .where(PersonalPhone.id == phone.id, PersonalPhone.home_pool.is_(None))
                    .values(home_pool=self.pool_id)
                    .execution_options(synchronize_session=False)
                )
            phone = await self._phone(phone.id) or phone
        if phone.home_pool != self.pool_id:
            raise PersonalPhoneWakeFailed(
                f"personal phone {phone.id}'s data is on its home pool {phone.home_pool!r}, not on "
                f"pool {self.pool_id!r}",
                context={"personal_phone_id": str(phone.id), "home_pool": phone.home_pool},
            )

    async def after_lease(self, row: DeviceRecord, *, recovering: bool) -> bool:
        """A device with a personal phone's data whose lease ended (or that failed): keep it for the
        phone (True: done, the device is idle and the phone ready) or detach the data (False: the
        device, now on its own data, goes on to its usual reset). Raises what the detach raised."""
        assert row.personal_phone_id is not None
        phone = await self._phone(row.personal_phone_id, deleted_too=True)
        extra = {
            "device_id": str(row.id),
            "serial": row.serial,
            "personal_phone_id": str(row.personal_phone_id),
        }
        keep = (
            not recovering
            and phone is not None
            and phone.deleted_at is None
            and phone.state == PersonalPhoneState.IN_USE
            and phone.device_id == row.id
        )
        if keep:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    health = await self.provider.health(row.serial)
            except (PhoneFleetError, TimeoutError) as exc:
                health = None
                extra["error"] = str(exc)
            if health is not None and health.ok and await self._kept(row, phone.id):
                logger.info("personal phone kept on its device", extra=extra)
                return True
            logger.warning("personal phone's device failed its check; stopping it", extra=extra)
        await self._detach(row, phone)
        return False

    async def _kept(self, row: DeviceRecord, phone_id: uuid.UUID) -> bool:
        now = utcnow()
        async with self.store._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(Device.id == row.id, Device.state == DeviceState.RESETTING,
                       Device.personal_phone_id == phone_id, Device.quarantined_at.is_(None))
                .values(state=DeviceState.IDLE, last_error=None, health_checked_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if result.rowcount != 1:
                return False
            await set_phone(db_session, phone_id, state=PersonalPhoneState.READY, holder=None, last_used_at=now,
                       updated_at=now)  # fmt: skip
        await self.store.signal.notify(IDLE)
        return True

    async def _detach(self, row: DeviceRecord, phone: PersonalPhone | None) -> None:
        """The data off the device (kept where it lives), the device on its own data, the phone asleep."""
        if isinstance(self.provider, PersonalData):
            async with asyncio.timeout(self.op_timeout_s):
                await self.provider.detach(row.serial)
        now = utcnow()
        async with self.store._tx() as db_session:
            await db_session.execute(
                update(Device).where(Device.id == row.id).values(personal_phone_id=None)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if phone is not None:
                values: dict[str, Any] = {"device_id": None, "holder": None, "updated_at": now}
                if phone.state != PersonalPhoneState.FAILED:
                    values["state"] = PersonalPhoneState.ASLEEP
                if phone.state == PersonalPhoneState.IN_USE:
                    values["last_used_at"] = now
                await db_session.execute(
                    update(PersonalPhone)
                    .where(PersonalPhone.id == phone.id, PersonalPhone.device_id == row.id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
        logger.info("personal phone asleep; its device back to the pool", extra={
            "device_id": str(row.id), "serial": row.serial, "personal_phone_id": str(row.personal_phone_id)})  # fmt: skip

    async def stop_idle(self, rows: list[DeviceRecord], now: dt.datetime | None = None) -> int:
        """Put to sleep every ready phone unused for ``idle_stop_s`` (or deleted) on ``rows``: its
        device → resetting (the next pass detaches it), the phone → sleeping. How many."""
        now = now or utcnow()
        stopped = 0
        for row in _ready(rows):
            assert row.personal_phone_id is not None
            phone = await self._phone(row.personal_phone_id, deleted_too=True)
            due = phone is None or phone.deleted_at is not None or (
                phone.last_used_at is not None
                and (now - phone.last_used_at).total_seconds() >= self.idle_stop_s
            )  # fmt: skip
            if due and await self._put_to_sleep(row, now, "personal phone idle; stopping its device"):
                stopped += 1
        return stopped

    async def evict(self, rows: list[DeviceRecord], *, max_devices: int, now: dt.datetime | None = None) -> int:
        """Put ready phones to sleep early when tasks wait for a device and the pool cannot grow.

        A ready phone's device serves nobody else, and counts against ``max_devices``: with the pool
        at its size, a task waiting for a device (``waiting.kind = no_device``, or
        ``personal_phone_busy`` for a phone that is asleep: it needs a pooled device to wake on)
        would wait until the phone's ``idle_stop_s`` ran out. So, for each such task beyond the pooled devices that are
        idle or on their way, the least recently used ready phone sleeps now (its device is reset
        and goes to the pool). Only ready phones: an ``in_use`` one's device is leased, never taken.
        How many it put to sleep."""
        ready = _ready(rows)
        if not ready or len(rows) < max_devices:
            return 0  # the pool can still make a device for them
        free = sum(r.personal_phone_id is None and r.state in _FREE_SOON for r in rows)
        kind = Task.waiting["kind"].as_string()
        # Asleep phones that tasks wait for need a pooled device too (one each, however many tasks).
        asleep = select(PersonalPhone.id).where(
            PersonalPhone.state.in_((PersonalPhoneState.ASLEEP, PersonalPhoneState.FAILED)),
            PersonalPhone.deleted_at.is_(None),
        )
        if self.pool_id is not None:  # a phone pinned to another pool wakes there, never here
            asleep = asleep.where(or_(PersonalPhone.home_pool.is_(None), PersonalPhone.home_pool == self.pool_id))
        async with self.store._sessions() as db_session:
            pooled = await db_session.scalar(
                select(func.count()).select_from(Task)
                .where(Task.status.not_in(_ENDED), kind == WaitingKind.NO_DEVICE.value)
            ) or 0  # fmt: skip
            phones = await db_session.scalar(
                select(func.count(func.distinct(Task.personal_phone_id))).select_from(Task)
                .where(Task.status.not_in(_ENDED), kind == WaitingKind.PERSONAL_PHONE_BUSY.value,
                       Task.personal_phone_id.in_(asleep))
            ) or 0  # fmt: skip
            waiting = pooled + phones
            used = dict((await db_session.execute(
                select(PersonalPhone.id, PersonalPhone.last_used_at)
                .where(PersonalPhone.id.in_([r.personal_phone_id for r in ready]))
            )).all())  # fmt: skip
        short = waiting - free
        if short <= 0:
            return 0
        now = now or utcnow()
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)

        def last_used(row: DeviceRecord) -> dt.datetime:
            when = used.get(row.personal_phone_id)
            return oldest if when is None else when if when.tzinfo else when.replace(tzinfo=dt.UTC)

        evicted = 0
        for row in sorted(ready, key=last_used):
            if evicted >= short:
                break
            if await self._put_to_sleep(row, now, "tasks wait for a device; putting a ready personal phone to sleep"):
                evicted += 1
        return evicted

    async def _put_to_sleep(self, row: DeviceRecord, now: dt.datetime, why: str) -> bool:
        """The ready phone's idle device → resetting, the phone → sleeping; False if it was leased meanwhile."""
        async with self.store._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(Device.id == row.id, Device.state == DeviceState.IDLE,
                       Device.personal_phone_id == row.personal_phone_id)
                .values(state=DeviceState.RESETTING, updated_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if result.rowcount != 1:
                return False  # leased meanwhile: in use again
            await db_session.execute(
                update(PersonalPhone)
                .where(PersonalPhone.id == row.personal_phone_id, PersonalPhone.device_id == row.id)
                .values(state=PersonalPhoneState.SLEEPING, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        logger.info(why, extra={"device_id": str(row.id), "personal_phone_id": str(row.personal_phone_id)})
        return True

    async def purge_deleted(self) -> int:
        """Remove the data and row of every deleted phone that no device runs; how many. Only a
        manager whose provider keeps personal data does it (``phonefleet pool``'s registered phones'
        manager must not delete a row whose data it cannot remove)."""
        if not isinstance(self.provider, PersonalData):
            return 0
        async with self.store._sessions() as db_session:
            running = select(Device.personal_phone_id).where(Device.personal_phone_id.is_not(None))
            ids = list(await db_session.scalars(
                select(PersonalPhone.id).where(PersonalPhone.deleted_at.is_not(None), PersonalPhone.id.not_in(running))
            ))  # fmt: skip
        removed = 0
        for phone_id in ids:
            async with asyncio.timeout(self.op_timeout_s):
                await self.provider.remove_data(phone_id)
            async with self.store._tx() as db_session:
                await db_session.execute(delete(PersonalPhone).where(PersonalPhone.id == phone_id))
            removed += 1
            logger.info("personal phone's data removed", extra={"personal_phone_id": str(phone_id)})
        return removed

    async def _phone(self, phone_id: uuid.UUID, *, deleted_too: bool = False) -> PersonalPhone | None:
        async with self.store._sessions() as db_session:
            phone = await db_session.get(PersonalPhone, phone_id)
        if phone is None or (phone.deleted_at is not None and not deleted_too):
            return None
        return phone


def _ready(rows: list[DeviceRecord]) -> list[DeviceRecord]:
    """The idle devices kept for a personal phone (its phone ``ready``)."""
    return [r for r in rows if r.state == DeviceState.IDLE and r.personal_phone_id is not None]


__all__ = ["PersonalPhoneKeeper"]
