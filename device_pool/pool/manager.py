"""The pool manager: keeps one provider's phones registered, reset, healthy and warm (ARCHITECTURE.md "Device pool").

One ``reconcile()`` pass, repeated by ``run()`` every ``min(reap_interval_s, health_interval_s)``
seconds and at once when a lease ends (the ``released`` wake-up):

1. reap expired leases (any provider's: whichever manager sees them first; the update is atomic);
2. sync rows with ``provider.list()``: new phones are registered (``provisioning``), rows whose
   phone is gone are retired (a leased one once its lease ends);
3. bring up ``provisioning`` and ``resetting`` devices: ``provider.reset`` then ``provider.health``
   → ``idle``, or ``unhealthy`` with ``last_error``. Only phones this manager itself just created
   skip the reset (``create`` promises factory state); a phone found by sync may hold anyone's data;
4. recover ``unhealthy`` devices with backoff: reset again (the sim restarts a dead process).
   Quarantined ones instead: replaced (destroyed, row retired, a new phone made) if
   ``recreate_unhealthy`` (providers that make phones), else given another chance once
   ``quarantine_s`` has passed (static phones);
5. create phones until ``min_idle`` are idle or on their way (resetting, provisioning), never more
   than ``max_devices`` rows in all;
6. health-check idle devices not checked for ``health_interval_s``.

Personal phones (``personal.py``) ride on these steps: before step 3 the data of phones waking on
leased devices is attached and ready phones idle for ``personal_idle_stop_s`` are put to sleep
(earlier, least recently used first, while tasks wait for a device and the pool is at
``max_devices``: ``PersonalPhoneKeeper.evict``);
step 3 keeps a personal phone's device for it after its lease, or detaches the data before the
usual reset; after step 4 deleted phones' data is removed.

Steps 3 to 6 talk to phones through the adb server: while ``adb_server`` (the supervisor,
``adb_supervisor.py``) says it is not answering, they wait, and a failure seen across an adb
outage or restart is not held against the phone.

**Quarantine.** A phone that stops answering is taken out of the pool instead of failing task after
task: it is quarantined (``DeviceStore.quarantine``: unhealthy, with the reason) when it fails
``max_reset_failures`` times in a row (checks and resets), when its last ``max_reset_failures``
runs all ended with it unreachable (their leases released ``device_error``) though its resets pass,
or fails again while *on probation*:
after it was recovered from a failure and before it has served a lease (the reset and check after
a lease are its proof). A quarantined device is never idle again, so never leased.

A device that was leased reaches ``idle`` only through step 3 or 4, both of which reset it first.

**Several pools, one database.** A manager with a ``pool_id`` (redroid's; the Helm chart runs one
pool per node) labels its rows with it (``POOL_LABEL``) and works only on those and on rows of no
pool: it never retires or resets another pool's devices. A personal phone whose data is local to a
pool wakes only on that pool's devices, its home pool (``personal_keeper.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from device_pool.errors import PhoneFleetError
from device_pool.logs import bind
from device_pool.pool.adb_supervisor import AdbServerSupervisor
from device_pool.pool.devices import DeviceRecord
from device_pool.pool.leases import DEVICE_ERROR, POOL_LABEL, LeaseStore
from device_pool.pool.personal_keeper import PersonalPhoneKeeper
from device_pool.pool.signals import RELEASED
from device_pool.providers.base import DeviceProfile, DeviceSpec, Provider
from device_pool.providers.errors import ProviderCapacity, UnknownDevice
from orchestrator.db import DeviceState, utcnow
from orchestrator.db.database import as_unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# States that will be idle without help: they count towards min_idle.
_COMING = (DeviceState.IDLE, DeviceState.RESETTING, DeviceState.PROVISIONING)


def _on_device(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Every line logged while ``method`` works on one device (``row``) carries its ``device_id``."""

    @functools.wraps(method)
    async def bound(self: Any, row: DeviceRecord, *args: Any) -> T:
        with bind(device_id=row.id):
            return await method(self, row, *args)

    return bound


class PoolManager:
    """Reconciles ``provider``'s phones with their device rows through ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: LeaseStore,
        provider: Provider,
        *,
        min_idle: int = 1,
        max_devices: int = 8,
        health_interval_s: float = 30.0,
        reap_interval_s: float = 5.0,
        profile: DeviceProfile | None = None,
        recreate_unhealthy: bool = True,
        max_reset_failures: int = 3,
        op_timeout_s: float = 120.0,
        parallel: int = 4,
        quarantine_s: float = 600.0,
        adb_server: AdbServerSupervisor | None = None,
        personal_idle_stop_s: float = 600.0,
        pool_id: str | None = None,
    ) -> None:
        if min_idle < 0 or max_devices < 0 or min(health_interval_s, reap_interval_s, op_timeout_s) <= 0:
            raise ValueError("min_idle and max_devices must be >= 0, the intervals and timeout positive")
        if max_reset_failures < 1 or quarantine_s < 0:
            raise ValueError("max_reset_failures must be >= 1 and quarantine_s >= 0")
        self.store = store
        self.provider = provider
        self.min_idle = min_idle
        self.max_devices = max_devices
        self.health_interval_s = health_interval_s
        self.reap_interval_s = reap_interval_s
        self.profile = profile
        self.recreate_unhealthy = recreate_unhealthy
        self.max_reset_failures = max_reset_failures
        self.op_timeout_s = op_timeout_s
        self.quarantine_s = quarantine_s  # how long a phone that cannot be replaced stays quarantined
        self.adb_server = adb_server
        # Which pool (host) this is, where several share the database with one provider (the Helm
        # chart's, one per node): its rows carry it (POOL_LABEL) and it sees only those (and rows
        # of no pool). Default: the provider's own (redroid's ``pool_id``); None: the only pool.
        self.pool_id = pool_id if pool_id is not None else getattr(provider, "pool_id", None)
        # Personal phones on this provider's devices: woken, kept after a lease, stopped when idle.
        self.personal = PersonalPhoneKeeper(
            store, provider, idle_stop_s=personal_idle_stop_s, op_timeout_s=op_timeout_s, pool_id=self.pool_id
        )
        self._parallel = asyncio.Semaphore(parallel)
        self._created: set[str] = set()  # serials this manager created: factory state, no reset needed
        self._failures: dict[uuid.UUID, int] = {}  # consecutive failed checks and bring-ups per device
        # Devices recovered from a failure that have not served a lease since: one more failure
        # quarantines them (a phone that hangs again right after its reset).
        self._probation: set[uuid.UUID] = set()
        self._adb_wait_logged = False
        self._retry_at: dict[uuid.UUID, float] = {}  # monotonic time of the next recovery attempt
        self._capacity_logged = False
        self._stopping = asyncio.Event()

    # --- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until ``stop()``; a pass that fails on the database or a phone is logged and retried.

        A ``stop()`` that came before ``run()`` started is kept (a SIGTERM during start-up), so
        ``run()`` then returns at once; a stopped manager is not restarted.
        """
        interval = min(self.reap_interval_s, self.health_interval_s)
        logger.info("pool manager running", extra={"provider": self.provider.name})
        while not self._stopping.is_set():
            # Armed before the pass: a lease released during it triggers the next pass at once.
            token = await self.store.signal.arm(RELEASED)
            try:
                await self.reconcile()
            except (SQLAlchemyError, OSError, PhoneFleetError) as exc:
                extra = {"provider": self.provider.name}
                if isinstance(exc, OSError) or (isinstance(exc, SQLAlchemyError) and as_unavailable(exc)):
                    # Out of reach (the database restarting, a refused socket): one line a pass.
                    extra["error"] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                    logger.warning("reconcile pass failed; retrying", extra=extra)
                else:
                    logger.exception("reconcile pass failed; retrying", extra=extra)
            await _first(self._stopping.wait(), self.store.signal.wait(token, interval))
        logger.info("pool manager stopped", extra={"provider": self.provider.name})

    def stop(self) -> None:
        """Ask ``run()`` to return after the pass in progress."""
        self._stopping.set()

    async def reconcile(self) -> None:
        """One pass: reap, sync, bring up, recover, keep min_idle, health-check."""
        await self.store.reap_expired()
        rows = await self.sync_devices(bring_up=False)
        if self.adb_server is not None and not self.adb_server.answering:
            # Every phone is out of reach: what a check saw now would be the server's fault, not theirs.
            level = logging.DEBUG if self._adb_wait_logged else logging.INFO
            logger.log(level, "adb server not answering; phones left as they are until it is back",
                       extra={"provider": self.provider.name})  # fmt: skip
            self._adb_wait_logged = True
            return
        self._adb_wait_logged = False
        await self.personal.wake(rows)
        if await self.personal.stop_idle(rows):
            rows = await self._devices()
        if await self.personal.evict(rows, max_devices=self.max_devices):
            rows = await self._devices()
        await self._gather(self._bring_up(r) for r in rows if r.state in _NEEDS_RESET)
        rows = await self._devices()
        await self._gather(self._recover(r) for r in rows if r.state == DeviceState.UNHEALTHY)
        await self.personal.purge_deleted()
        await self._keep_min_idle()
        await self._check_idle()

    # --- the steps --------------------------------------------------------------------------------

    async def sync_devices(self, *, bring_up: bool = True) -> list[DeviceRecord]:
        """Register the provider's phones, retire rows it no longer has; then reset+check new ones → idle."""
        specs = {spec.serial: spec for spec in await self.provider.list()}
        rows = await self._devices()
        known = {row.serial: row for row in rows}
        for spec in specs.values():
            row = known.get(spec.serial)
            # A row made before this pool labelled its rows gets the label too (register keeps its state).
            if row is None or (self.pool_id is not None and row.labels.get(POOL_LABEL) != self.pool_id):
                await self._register(spec, {} if row is None else row.labels)
        for row in rows:
            if row.serial not in specs:
                await self.store.retire(row.id, "gone from the provider")
        rows = await self._devices()
        if bring_up:
            await self._gather(self._bring_up(r) for r in rows if r.state in _NEEDS_RESET)
            rows = await self._devices()
        return rows

    @_on_device
    async def _bring_up(self, row: DeviceRecord, recovering: bool = False) -> bool:
        """reset (unless just created) → health → idle; a failure → unhealthy with the reason.

        ``recovering``: the manager itself made it ``resetting`` after a failure (step 4); any other
        ``resetting`` device comes from a lease that ended.
        """
        fresh = row.state == DeviceState.PROVISIONING and row.serial in self._created
        extra = {"device_id": str(row.id), "serial": row.serial}
        generation = self._adb_generation()
        if row.personal_phone_id is not None:
            # A personal phone's data: kept for it (done), or detached, then the usual reset.
            async with self._parallel:
                try:
                    if await self.personal.after_lease(row, recovering=recovering):
                        self._failures.pop(row.id, None)
                        self._probation.discard(row.id)
                        return True
                except UnknownDevice:
                    await self.store.retire(row.id, "gone from the provider")
                    return False
                except (PhoneFleetError, TimeoutError) as exc:
                    error = f"detaching a personal phone failed: {type(exc).__name__}: {exc}"
                    return await self._failed(row, error, generation)
            row = dataclasses.replace(row, personal_phone_id=None)
        async with self._parallel:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    if not fresh:
                        await self.provider.reset(row.serial)
                    health = await self.provider.health(row.serial)
            except UnknownDevice:
                await self.store.retire(row.id, "gone from the provider")
                return False
            except (PhoneFleetError, TimeoutError) as exc:
                error = f"{'reset' if not fresh else 'health'} failed: {type(exc).__name__}: {exc}"
                return await self._failed(row, error, generation)
        if not health.ok:
            return await self._failed(row, f"health check failed: {health.detail}", generation)
        if row.state == DeviceState.RESETTING and not recovering and await self._fails_its_runs(row):
            return False
        self._created.discard(row.serial)
        self._retry_at.pop(row.id, None)
        if self._failures.pop(row.id, 0):
            self._probation.add(row.id)  # back after a failure: it has yet to serve a lease
        elif not recovering:
            self._probation.discard(row.id)  # reset and checked after a lease: it served one
        if not await self.store.mark_idle(row.id):
            logger.info("device changed state during its reset; left as it is", extra=extra)
            return False
        return True

    async def _fails_its_runs(self, row: DeviceRecord) -> bool:
        """Quarantine a phone whose resets pass but whose last ``max_reset_failures`` runs all ended
        with it unreachable (``DEVICE_ERROR`` releases): it would fail task after task otherwise."""
        reasons = await self.store.last_release_reasons(row.id, self.max_reset_failures)
        if len(reasons) < self.max_reset_failures or any(r != DEVICE_ERROR for r in reasons):
            return False
        why = f"its last {len(reasons)} runs ended with the phone unreachable, though its resets passed"
        if await self.store.quarantine(row.id, why):
            self._failures.pop(row.id, None)
            self._probation.discard(row.id)
            self._retry_at.pop(row.id, None)
            return True
        return False

    @_on_device
    async def _failed(self, row: DeviceRecord, error: str, generation: int) -> bool:
        extra = {"device_id": str(row.id), "serial": row.serial, "error": error}
        if await self._adb_to_blame(generation):
            # The adb server died or wedged meanwhile: the phone is left as it is (a leased one was
            # never touched); the next pass, with the server back, looks again.
            logger.info("phone failed while the adb server was down; not held against it", extra=extra)
            return False
        count = self._failures.get(row.id, 0) + 1
        if count >= self.max_reset_failures or row.id in self._probation:
            why = (
                f"{count} failures in a row"
                if count >= self.max_reset_failures
                else "failed again after it was recovered, before it served a lease"
            )
            # Guarded like mark_unhealthy: a device leased meanwhile stays with its holder.
            if await self.store.quarantine(row.id, f"{error} ({why})"):
                self._failures.pop(row.id, None)
                self._probation.discard(row.id)
                self._retry_at.pop(row.id, None)
            return False
        # Guarded: a device leased meanwhile (an idle one being checked) stays with its holder.
        if await self.store.mark_unhealthy(row.id, error):
            self._failures[row.id] = count
            # Exponential backoff, capped by the health interval: a dead phone is not hammered.
            self._retry_at[row.id] = time.monotonic() + min(0.5 * 2 ** (count - 1), self.health_interval_s)
        return False

    @_on_device
    async def _recover(self, row: DeviceRecord) -> None:
        if row.quarantined:
            await self._after_quarantine(row)
            return
        if time.monotonic() < self._retry_at.get(row.id, 0.0):
            return
        if await self.store.mark_resetting(row.id):
            await self._bring_up(dataclasses.replace(row, state=DeviceState.RESETTING), True)

    async def _after_quarantine(self, row: DeviceRecord) -> None:
        """Replace a quarantined phone; one the provider cannot replace gets another chance after
        ``quarantine_s`` (on probation: one more failure and it is back in quarantine)."""
        if self.recreate_unhealthy:
            await self._replace(row)
            return
        since = row.quarantined_at
        if since is None or (utcnow() - since).total_seconds() < self.quarantine_s:
            return
        if await self.store.end_quarantine(row.id):
            logger.info(
                "quarantine over; resetting the device",
                extra={"device_id": str(row.id), "serial": row.serial},
            )
            self._probation.add(row.id)  # one more failure, this bring-up's included, and it is back
            await self._bring_up(dataclasses.replace(row, state=DeviceState.RESETTING), True)

    @_on_device
    async def _replace(self, row: DeviceRecord) -> None:
        """Destroy a quarantined phone and make a new one in its place.

        The replacement is made first where the provider has room: the old phone still holds its
        address, so the new one gets another, and the retired row keeps the quarantine's record
        (an address taken again brings its row back as a new phone, record cleared).
        """
        extra = {"device_id": str(row.id), "serial": row.serial, "reason": row.quarantine_reason}
        logger.warning("device quarantined; replacing it", extra=extra)
        if not await self.store.retire(row.id, f"quarantined and replaced: {row.quarantine_reason}"):
            return
        self._failures.pop(row.id, None)
        self._retry_at.pop(row.id, None)
        self._probation.discard(row.id)
        made = await self._create(1, quiet_capacity=True)
        try:
            async with asyncio.timeout(self.op_timeout_s):
                await self.provider.destroy(row.serial)
        except (PhoneFleetError, TimeoutError) as exc:
            logger.warning("destroy failed", extra={**extra, "error": str(exc)})
        if not made:
            await self._create(1)

    async def _keep_min_idle(self) -> None:
        rows = await self._devices()
        # A device kept for a personal phone serves nobody else: it is not coming for the pool.
        coming = sum(row.state in _COMING and row.personal_phone_id is None for row in rows)
        await self._create(min(self.min_idle - coming, self.max_devices - len(rows)))

    async def _create(self, count: int, *, quiet_capacity: bool = False) -> int:
        """Make up to ``count`` phones and bring them up; how many were made."""
        made = 0
        for _ in range(max(count, 0)):
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    spec = await self.provider.create(self.profile)
            except ProviderCapacity as exc:
                # Static phones can never be created, a full sim provider not now: say so once.
                level = logging.DEBUG if self._capacity_logged or quiet_capacity else logging.WARNING
                logger.log(level, "provider cannot create more phones", extra={"error": str(exc)})
                self._capacity_logged = self._capacity_logged or not quiet_capacity
                return made
            except (PhoneFleetError, TimeoutError) as exc:
                logger.warning("phone creation failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                return made
            self._capacity_logged = False
            self._created.add(spec.serial)
            row = await self._register(spec)
            made += 1
            logger.info("phone created for the pool", extra={"device_id": str(row.id), "serial": spec.serial})
            await self._bring_up(row)
        return made

    async def _check_idle(self) -> None:
        now = utcnow()
        due = [
            row
            for row in await self._devices()
            if row.state == DeviceState.IDLE
            and (
                row.health_checked_at is None
                or (now - row.health_checked_at).total_seconds() >= self.health_interval_s
            )
        ]
        await self._gather(self._check(row) for row in due)

    @_on_device
    async def _check(self, row: DeviceRecord) -> None:
        generation = self._adb_generation()
        async with self._parallel:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    health = await self.provider.health(row.serial)
            except UnknownDevice:
                await self.store.retire(row.id, "gone from the provider")
                return
            except TimeoutError:
                health = None
        if health is not None and health.ok:
            await self.store.touch_health(row.id)
            return
        detail = "health check timed out" if health is None else health.detail
        await self._failed(row, f"health check failed: {detail}", generation)

    # --- the adb server ---------------------------------------------------------------------------

    def _adb_generation(self) -> int:
        return 0 if self.adb_server is None else self.adb_server.generation

    async def _adb_to_blame(self, generation: int) -> bool:
        """Whether the adb server restarted since ``generation`` or does not answer now."""
        server = self.adb_server
        if server is None:
            return False
        return server.generation != generation or not server.answering or not await server.answers()

    async def _devices(self) -> list[DeviceRecord]:
        """This pool's rows: its provider's, less those another pool (``POOL_LABEL``) runs."""
        rows = await self.store.devices(self.provider.name)
        if self.pool_id is None:
            return rows
        return [r for r in rows if r.labels.get(POOL_LABEL, self.pool_id) == self.pool_id]

    async def _register(self, spec: DeviceSpec, kept: dict[str, Any] | None = None) -> DeviceRecord:
        """The spec's row; ``kept``: labels of its existing row that stay (an admin's drain)."""
        labels = {**(kept or {}), **spec.labels}
        if self.pool_id is not None:
            labels[POOL_LABEL] = self.pool_id
        return await self.store.register(
            provider=spec.provider,
            serial=spec.serial,
            profile=spec.profile.model_dump(mode="json"),
            labels=labels,
        )

    @staticmethod
    async def _gather(calls: Iterable[Awaitable[object]]) -> None:
        """Run per-device steps at once; all finish before the first failure is raised (no orphan tasks)."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


_NEEDS_RESET = (DeviceState.PROVISIONING, DeviceState.RESETTING)


async def _first(*awaitables: Awaitable[T]) -> None:
    """Until the first of ``awaitables`` finishes; the rest are cancelled."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["PoolManager"]
