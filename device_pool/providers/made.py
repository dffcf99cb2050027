"""``MadePhones``: the skeleton of a provider that makes its own phones, one per port (sim, redroid).

Such a provider keeps its phones by port, reserving a port before the phone exists so concurrent
``create`` calls never pick the same one. Creating is: reserve, boot, describe; a port someone else
took in between (``PortTaken``) is skipped and the next one tried. What a phone *is* (a process, a
container) and how it boots, stops and describes itself are the subclass's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from device_pool.driver.device import AdbDevice
from device_pool.errors import DeviceError
from device_pool.providers.base import DeviceProfile, DeviceSpec
from device_pool.providers.errors import (
    PhoneStartFailed,
    PortTaken,
    ProviderError,
    UnknownDevice,
    UnsupportedProfile,
)

logger = logging.getLogger(__name__)


@dataclass
class MadePhone:
    port: int
    profile: DeviceProfile
    device: AdbDevice
    spec: DeviceSpec | None = None  # None until the phone is online and described

    @property
    def serial(self) -> str:
        return self.device.serial

    async def disconnect(self, timeout: float) -> None:
        """``adb disconnect`` from the phone before it goes; a failure is logged, never raised: the adb
        server itself may be gone (shutdown order), and the phone must go all the same."""
        try:
            await self.device.disconnect(timeout=timeout)
        except DeviceError as exc:
            logger.warning("adb disconnect failed", extra={"serial": self.serial, "error": str(exc)})


PhoneT = TypeVar("PhoneT", bound=MadePhone)


class MadePhones(Generic[PhoneT]):
    """``start``, ``list``, ``create``, ``destroy`` and ``close`` over the subclass's hooks (the ``_`` methods)."""

    name: str
    apps_from = "the phone"  # who lacks an app a profile asks for, in UnsupportedProfile's message

    def __init__(self) -> None:
        self._phones: dict[int, PhoneT] = {}  # by port; a port is reserved here before its phone exists
        self._closed = False

    # --- hooks ------------------------------------------------------------------------------------

    @property
    def _start_count(self) -> int:
        """How many phones ``start()`` brings up."""
        raise NotImplementedError

    async def _prepare(self) -> None:
        """Whatever must hold before the first phone is made (checked once)."""

    def _profile(self, profile: DeviceProfile | None) -> DeviceProfile:
        raise NotImplementedError

    def _reserve(self, profile: DeviceProfile, tried: set[int]) -> PhoneT:
        """Claim the lowest free port not in ``tried`` (no await before the claim); ProviderCapacity if none."""
        raise NotImplementedError

    async def _boot(self, phone: PhoneT) -> None:
        """Bring the phone up in factory state, online; PortTaken when its port was taken."""
        raise NotImplementedError

    async def _describe(self, phone: PhoneT) -> DeviceSpec:
        raise NotImplementedError

    async def _discard(self, phone: PhoneT) -> None:
        """Undo a ``_boot`` that failed."""
        raise NotImplementedError

    async def _remove(self, phone: PhoneT) -> None:
        """Release the phone and everything it holds (``destroy`` and ``close``)."""
        raise NotImplementedError

    async def _after_close(self) -> None:
        """Release what the provider holds beyond its phones."""

    def _log_extra(self, phone: PhoneT) -> dict[str, Any]:
        return {}

    # --- the Provider protocol -------------------------------------------------------------------

    async def start(self) -> list[DeviceSpec]:
        """Create phones until the configured count run (concurrently); the first failure is raised."""
        await self._prepare()
        missing = max(self._start_count - len(self._phones), 0)
        results = await asyncio.gather(*(self.create() for _ in range(missing)), return_exceptions=True)
        # The phones that did come up stay (close() removes them); the first failure is the caller's.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return await self.list()

    async def list(self) -> list[DeviceSpec]:
        """The phones that are online and described, by port."""
        return [p.spec for _, p in sorted(self._phones.items()) if p.spec is not None]

    async def create(self, profile: DeviceProfile | None = None) -> DeviceSpec:
        """A phone in factory state on the lowest free port; ProviderCapacity when none is left."""
        if self._closed:
            raise ProviderError("the provider is closed", provider=self.name)
        await self._prepare()
        wanted = self._profile(profile)
        tried: set[int] = set()
        while True:
            phone = self._reserve(wanted, tried)
            try:
                await self._boot(phone)
                phone.spec = await self._describe(phone)
            except PortTaken:
                tried.add(phone.port)
                self._phones.pop(phone.port, None)
                await self._discard(phone)
                continue
            except BaseException:
                self._phones.pop(phone.port, None)
                await self._discard(phone)
                raise
            break
        missing = set(wanted.apps) - set(phone.spec.profile.apps)
        if missing:
            await self.destroy(phone.serial)
            raise UnsupportedProfile(
                f"{self.apps_from} has no {', '.join(sorted(missing))}", provider=self.name
            )
        logger.info("phone created", extra={"serial": phone.serial, **self._log_extra(phone)})
        return phone.spec

    async def destroy(self, serial: str) -> None:
        """Remove the phone and what it holds; an unknown serial is a no-op."""
        phone = self._find(serial)
        if phone is None:
            logger.debug("destroy of a phone we do not have", extra={"serial": serial})
            return
        self._phones.pop(phone.port, None)
        await self._remove(phone)
        logger.info("phone destroyed", extra={"serial": serial})

    async def close(self) -> None:
        """Remove every phone (each on its own, so one failure stops no other), then what else is held."""
        self._closed = True
        phones = list(self._phones.values())
        self._phones.clear()
        results = await asyncio.gather(*(self._remove(p) for p in phones), return_exceptions=True)
        for phone, result in zip(phones, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("could not remove phone", extra={"serial": phone.serial}, exc_info=result)
        await self._after_close()

    # --- shared internals ------------------------------------------------------------------------

    async def _boot_again(self, phone: PhoneT) -> None:
        """Boot a phone that was taken down for a reset on its own port again (its serial names the
        port): a port someone took meanwhile is PhoneStartFailed, and the phone is not handed out."""
        try:
            await self._boot(phone)
        except PortTaken as exc:
            raise PhoneStartFailed(
                f"{phone.serial}: port {phone.port} was taken while the phone was down",
                provider=self.name,
                device_id=phone.serial,
            ) from exc

    def _find(self, serial: str) -> PhoneT | None:
        return next((p for p in self._phones.values() if p.serial == serial), None)

    def _require(self, serial: str) -> PhoneT:
        phone = self._find(serial)
        if phone is None or phone.spec is None:
            raise UnknownDevice(
                f"{serial} is not a phone of this provider", provider=self.name, device_id=serial
            )
        return phone


__all__ = ["MadePhone", "MadePhones"]
