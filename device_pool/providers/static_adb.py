"""StaticAdbProvider: phones that exist outside PhoneFleet (real handsets, long-lived redroid), listed in config."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device_pool.driver.adb_server import AdbServerClient
from device_pool.driver.device import AdbDevice, DeviceTimeouts
from device_pool.errors import DeviceError
from device_pool.providers.base import DeviceProfile, DeviceSpec, Health
from device_pool.providers.checks import DEFAULT_LAUNCHER, go_home, probe
from device_pool.providers.errors import ProviderCapacity, UnknownDevice

logger = logging.getLogger(__name__)


class StaticDevice(BaseModel):
    """One listed phone: its adb serial, what it is, and the shell commands that clean it between users."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    serial: str = Field(min_length=1)  # host:port for TCP phones (adb connect), else a USB serial
    profile: DeviceProfile = Field(default_factory=DeviceProfile)
    labels: dict[str, str] = Field(default_factory=dict)
    # Run in order by reset(), each must exit 0: e.g. "pm clear com.example", "rm -rf /sdcard/Download/*".
    reset_commands: tuple[str, ...] = ()
    launcher: str = DEFAULT_LAUNCHER  # the package HOME brings up; a Pixel's is another


class StaticAdbConfig(BaseModel):
    """The listed phones and the adb server that reaches them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    devices: tuple[StaticDevice, ...] = ()
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    connect_timeout_s: float = Field(30.0, gt=0)
    command_timeout_s: float = Field(30.0, gt=0)  # per reset command: `pm clear` is slow on a real phone
    health_timeout_s: float = Field(5.0, gt=0)

    @field_validator("devices")
    @classmethod
    def _unique(cls, devices: tuple[StaticDevice, ...]) -> tuple[StaticDevice, ...]:
        serials = [d.serial for d in devices]
        duplicates = sorted({s for s in serials if serials.count(s) > 1})
        if duplicates:
            raise ValueError(f"serials listed twice: {', '.join(duplicates)}")
        return devices


class StaticAdbProvider:
    """Phones listed in config: it connects, cleans and checks them, and can neither make nor remove phones.

    ``destroy`` drops a phone from ``list()`` and disconnects it (the phone itself is untouched); a
    new provider built from the same config lists it again. Its reset is only as thorough as the
    phone's ``reset_commands``: list every app and path a user can leave data in.
    """

    name = "static_adb"

    def __init__(self, config: StaticAdbConfig) -> None:
        self.config = config
        server = AdbServerClient(config.adb_host, config.adb_port, timeout=config.command_timeout_s)
        timeouts = DeviceTimeouts(command=config.command_timeout_s, connect=config.connect_timeout_s)
        self._devices: dict[str, tuple[StaticDevice, AdbDevice]] = {
            d.serial: (d, AdbDevice(d.serial, server=server, timeouts=timeouts)) for d in config.devices
        }
        for listed in config.devices:
            if not listed.reset_commands:
                logger.warning(
                    "static phone has no reset_commands: reset only presses HOME",
                    extra={"serial": listed.serial},
                )

    def __repr__(self) -> str:
        return f"StaticAdbProvider({len(self._devices)} phones)"

    async def start(self) -> list[DeviceSpec]:
        """``adb connect`` every listed phone at once; one that does not come online is logged, not fatal."""
        await asyncio.gather(*(self._connect_quietly(serial) for serial in self._devices))
        return await self.list()

    async def list(self) -> list[DeviceSpec]:
        """The listed phones not destroyed, in config order, whether online or not."""
        return [
            DeviceSpec(provider=self.name, serial=d.serial, profile=d.profile, labels=dict(d.labels))
            for d, _ in self._devices.values()
        ]

    async def create(self, profile: DeviceProfile | None = None) -> DeviceSpec:
        """Always ProviderCapacity: static phones are listed in config, never made."""
        raise ProviderCapacity(
            "static ADB phones cannot be created: add the phone to the provider's config",
            provider=self.name,
        )

    async def destroy(self, serial: str) -> None:
        """Drop the phone from ``list()`` and ``adb disconnect`` it; an unknown serial is a no-op."""
        entry = self._devices.pop(serial, None)
        if entry is None:
            return
        await self._disconnect(entry[1])
        logger.info("static phone released", extra={"serial": serial})

    async def reset(self, serial: str) -> None:
        """Reconnect, run the phone's ``reset_commands`` (each must exit 0), then HOME and wait for the launcher.

        Raises CommandFailed when a cleanup command fails: the phone is not clean and must not be handed out.
        """
        listed, device = self._require(serial)
        await device.connect(timeout=self.config.connect_timeout_s)
        for command in listed.reset_commands:
            await device.shell(command, timeout=self.config.command_timeout_s, check=True)
        await go_home(device, listed.launcher, timeout=self.config.command_timeout_s)
        logger.info("static phone reset", extra={"serial": serial, "commands": len(listed.reset_commands)})

    async def health(self, serial: str) -> Health:
        """The ADB probe (state, echo, screen size against the listed profile); never raises for the phone."""
        listed, device = self._require(serial)
        return await probe(device, listed.profile, timeout=self.config.health_timeout_s)

    async def close(self) -> None:
        """Disconnect the TCP phones; the phones themselves are left as they are."""
        await asyncio.gather(*(self._disconnect(device) for _, device in self._devices.values()))

    def _require(self, serial: str) -> tuple[StaticDevice, AdbDevice]:
        entry = self._devices.get(serial)
        if entry is None:
            raise UnknownDevice(
                f"{serial} is not a phone of this provider", provider=self.name, device_id=serial
            )
        return entry

    async def _connect_quietly(self, serial: str) -> None:
        try:
            await self._devices[serial][1].connect(timeout=self.config.connect_timeout_s)
        except DeviceError as exc:
            logger.warning("static phone not online", extra={"serial": serial, "error": exc.message})

    async def _disconnect(self, device: AdbDevice) -> None:
        # Only TCP phones were `adb connect`ed; a USB phone has nothing to disconnect.
        if ":" not in device.serial:
            return
        try:
            await device.disconnect(timeout=self.config.command_timeout_s)
        except DeviceError as exc:
            logger.warning("adb disconnect failed", extra={"serial": device.serial, "error": exc.message})


__all__ = ["StaticAdbConfig", "StaticAdbProvider", "StaticDevice"]
