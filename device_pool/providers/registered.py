"""RegisteredAdbProvider: ADB phones an admin registered in the database (``POST /api/v1/devices``).

Rows with provider ``static`` are the whole config: ``list()`` reads them (not a file), and the
reset and health check are ``StaticAdbProvider``'s, over a config rebuilt whenever the rows change
(``adb connect``, HOME until the AOSP launcher is in front; the probe: adb state, a shell echo,
``wm size`` against the registered profile). So a ``PoolManager`` over this provider brings a newly
registered phone from ``provisioning`` to ``idle`` (or ``unhealthy`` with ``last_error``) on its
next pass, and never retires one: a row the admin retired is simply no longer listed.

The rows come from any ``RegisteredRows`` (the pool's ``DeviceStore`` in ``phonefleet pool``), so this
module reads no database itself and the providers stay free of the orchestrator.

Registered phones have no reset commands: the reset only presses HOME. A phone whose users leave
data behind belongs in a devices file (``StaticAdbProvider`` with ``reset_commands``) instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from device_pool.providers.base import DeviceProfile, DeviceSpec, Health
from device_pool.providers.errors import ProviderCapacity
from device_pool.providers.static_adb import StaticAdbConfig, StaticAdbProvider, StaticDevice

logger = logging.getLogger(__name__)

REGISTERED = "static"  # the provider name of rows registered through the API


class RegisteredRow(Protocol):
    """What this provider reads of one device row (``DeviceRecord`` has it)."""

    id: uuid.UUID
    serial: str
    profile: dict[str, Any]


class RegisteredRows(Protocol):
    """Where the rows live: ``DeviceStore.devices(provider)``, not retired, oldest first."""

    async def devices(self, provider: str | None = None) -> Sequence[RegisteredRow]: ...


class RegisteredAdbProvider:
    """The ``static`` rows of ``store`` as a provider; it can neither make nor remove phones."""

    name = REGISTERED

    def __init__(
        self,
        store: RegisteredRows,
        *,
        adb_host: str = "127.0.0.1",
        adb_port: int = 5037,
        connect_timeout_s: float = 30.0,
        command_timeout_s: float = 30.0,
        health_timeout_s: float = 5.0,
    ) -> None:
        self._store = store
        self._config = StaticAdbConfig(
            adb_host=adb_host,
            adb_port=adb_port,
            connect_timeout_s=connect_timeout_s,
            command_timeout_s=command_timeout_s,
            health_timeout_s=health_timeout_s,
        )
        self._phones = StaticAdbProvider(self._config)

    def __repr__(self) -> str:
        return f"RegisteredAdbProvider({self._phones!r})"

    async def start(self) -> list[DeviceSpec]:
        """Read the rows and ``adb connect`` every phone (one that does not answer is logged, not fatal)."""
        await self.list()
        await self._phones.start()
        return await self.list()

    async def list(self) -> list[DeviceSpec]:
        """The registered phones not retired, oldest first; the adb config follows the rows."""
        rows = await self._store.devices(self.name)
        listed = tuple(StaticDevice(serial=row.serial, profile=_profile(row)) for row in rows)
        if listed != self._phones.config.devices:
            old = self._phones
            self._phones = StaticAdbProvider(self._config.model_copy(update={"devices": listed}))
            # Disconnect the TCP phones no longer listed (retired); the others keep their connection.
            for serial in {d.serial for d in old.config.devices} - {d.serial for d in listed}:
                await old.destroy(serial)
        return [DeviceSpec(provider=self.name, serial=d.serial, profile=d.profile, labels={}) for d in listed]

    async def create(self, profile: DeviceProfile | None = None) -> DeviceSpec:
        """Always ProviderCapacity: these phones are registered by an admin, never made."""
        raise ProviderCapacity(
            "registered ADB phones cannot be created: register one with POST /api/v1/devices",
            provider=self.name,
        )

    async def destroy(self, serial: str) -> None:
        """``adb disconnect`` the phone; it is listed again while its row is not retired."""
        await self._phones.destroy(serial)

    async def reset(self, serial: str) -> None:
        """Reconnect and bring the launcher to the front (``StaticAdbProvider.reset`` without commands)."""
        await self._phones.reset(serial)

    async def health(self, serial: str) -> Health:
        """The ADB probe against the registered profile; never raises for the phone."""
        return await self._phones.health(serial)

    async def close(self) -> None:
        """Disconnect the TCP phones; the phones themselves are left as they are."""
        await self._phones.close()


def _profile(row: RegisteredRow) -> DeviceProfile:
    # The API validates profiles as DeviceProfile; a row edited by hand falls back to the default,
    # so its health check reports the mismatch instead of the phone vanishing from the pool.
    try:
        return DeviceProfile.model_validate(row.profile)
    except ValidationError as exc:
        logger.warning(
            "registered phone has an invalid profile; checking it against the default",
            extra={"device_id": str(row.id), "serial": row.serial, "error": str(exc).splitlines()[0]},
        )
        return DeviceProfile()


__all__ = ["REGISTERED", "RegisteredAdbProvider", "RegisteredRow", "RegisteredRows"]
