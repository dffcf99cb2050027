"""RedroidProvider: one redroid container per phone on a Docker engine, reset by recreating it on a fresh volume.

A phone is a container named ``phonefleet-<pool_id>-<port>`` labelled as ours (``config``),
with ``/data`` on a volume of its own (or a fresh ``/data-diff`` over a shared golden ``/data-base``).
``reset`` removes the container and its volume and starts a new one: the previous user's data is
gone because its volume is. Containers and volumes carrying our pool's labels that this provider
does not hold (a pool manager that was killed) are removed at start: they may hold anyone's data.

A personal phone (``attach``) has a volume of its own, ``phonefleet-<pool_id>-personal-<id>``
(role ``personal``, never reaped): the container is recreated on it, as ``/data`` (or as
``/data-diff`` over the golden ``/data-base``). The container is disposable, the volume is not:
``detach`` and ``reset`` recreate the container on a fresh volume of the phone's own and leave the
personal volume as it is; only ``remove_data`` removes it. A volume made by another image is
refused (``LABEL_IMAGE``): Android does not boot an upgrade over an old /data unmigrated.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_pool.driver.adb_server import AdbServerClient
from device_pool.driver.device import AdbDevice, DeviceTimeouts
from device_pool.driver.text_input import ADB_KEYBOARD_IME
from device_pool.errors import DeviceError
from device_pool.providers.base import DeviceProfile, DeviceSpec, Health
from device_pool.providers.checks import DEFAULT_LAUNCHER, probe, wait_for_launcher
from device_pool.providers.errors import PhoneStartFailed, ProviderCapacity, ProviderError, UnsupportedProfile
from device_pool.providers.made import MadePhone, MadePhones
from device_pool.providers.redroid.config import (
    ADB_PORT_ENV,
    ADB_PORT_IN_CONTAINER,
    LABEL_IMAGE,
    RedroidConfig,
)
from device_pool.providers.redroid.engine import Engine, binds
from device_pool.providers.redroid.host import check_engine_host
from device_pool.providers.redroid.volumes import personal_volume_labels, personal_volume_name

logger = logging.getLogger(__name__)

ADB_KEYBOARD_PACKAGE = ADB_KEYBOARD_IME.split("/", 1)[0]
_POLL_S = 0.2
_APK_ON_PHONE = "/data/local/tmp/phonefleet-adbkeyboard.apk"


@dataclass
class _Phone(MadePhone):
    name: str = ""  # the container's name: set before it exists, so reaping never mistakes it for an orphan
    volume: str | None = None  # its own data volume (removed with the container); None on a personal one
    personal: str | None = None  # the personal phone's volume it runs on now, if any


class RedroidProvider(MadePhones[_Phone]):
    """redroid phones on one Docker engine, between ``min_count`` and ``max_count`` (see the module docstring)."""

    name = "redroid"
    apps_from = "the image"
    # A personal phone's volume is on this pool's engine alone: the phone is pinned to this pool.
    personal_data_local = True

    def __init__(self, config: RedroidConfig) -> None:
        super().__init__()
        self.config = config
        self.engine = Engine(config.docker_url, provider=self.name, timeout_s=config.command_timeout_s)
        self._server = AdbServerClient(config.adb_host, config.adb_port, timeout=config.command_timeout_s)
        self._timeouts = DeviceTimeouts(command=config.command_timeout_s, connect=config.boot_timeout_s)
        self._prepared = False
        # An asyncio.Lock belongs to one event loop; callers may use several (one after another).
        self._prepare_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RedroidProvider({c.image_ref} on {c.docker_url}, {len(self._phones)} of {c.max_count} phones)"
        )

    # --- the Provider protocol -------------------------------------------------------------------

    async def reset(self, serial: str) -> None:
        """Recreate the container on a fresh data volume (over the golden one, if configured) and boot it.

        Raises PhoneStartFailed when the new container does not boot: the phone must not be handed out.
        """
        phone = self._require(serial)
        phone.personal = None  # a personal phone's volume is left as it is: never reset
        await self._teardown(phone)
        await self._boot_again(phone)
        logger.info("phone reset on a fresh volume", extra={"serial": serial, "volume": phone.volume})

    # --- personal phones (the PersonalData protocol) --------------------------------------------

    def personal_volume(self, personal_phone_id: uuid.UUID) -> str:
        """The name of a personal phone's data volume on this pool's engine."""
        return personal_volume_name(self.config.pool_id, personal_phone_id)

    async def attach(self, serial: str, personal_phone_id: uuid.UUID) -> None:
        """Recreate the phone's container on the personal phone's volume (made empty the first time:
        the phone then starts in factory state). Raises ``ProviderError`` for a volume another image
        made, ``PhoneStartFailed``."""
        phone = self._require(serial)
        volume = self.personal_volume(personal_phone_id)
        labels = await asyncio.to_thread(self.engine.volume_labels, volume)
        image = self.config.image_ref
        if labels is not None and labels.get(LABEL_IMAGE, image) != image:
            raise ProviderError(
                f"personal phone {personal_phone_id}'s volume {volume} was made by {labels[LABEL_IMAGE]}, not "
                f"{image}: Android is not upgraded over an old /data here; migrate the volume "
                f"(docs/personal-phones.md) or run that image",
                provider=self.name,
                context={"volume": volume, "volume_image": labels[LABEL_IMAGE], "image": image},
            )
        if labels is None:
            await asyncio.to_thread(
                self.engine.create_volume, volume, personal_volume_labels(self.config, personal_phone_id, image)
            )
        await self._teardown(phone)
        phone.personal = volume
        await self._boot_again(phone)
        logger.info("personal phone attached", extra={"serial": serial, "volume": volume})

    async def detach(self, serial: str) -> None:
        """Recreate the container on a fresh volume of its own; the personal volume is kept."""
        await self.reset(serial)

    async def remove_data(self, personal_phone_id: uuid.UUID) -> None:
        """Remove the personal phone's volume for good; no phone may run on it."""
        volume = self.personal_volume(personal_phone_id)
        if any(phone.personal == volume for phone in self._phones.values()):
            raise ProviderError(f"personal phone {personal_phone_id} still runs on a phone", provider=self.name)
        await asyncio.to_thread(self.engine.remove_volume, volume)

    async def health(self, serial: str) -> Health:
        """The container is running, then the ADB probe (state, echo, screen size); never raises for the phone."""
        phone = self._require(serial)
        try:
            container = await asyncio.wait_for(
                asyncio.to_thread(self.engine.inspect, phone.name), self.config.health_timeout_s
            )
        except (ProviderError, TimeoutError) as exc:
            return Health(False, f"docker engine: {exc}")
        if container is None:
            return Health(False, f"container {phone.name} is gone")
        if container.status != "running":
            return Health(
                False, f"container {phone.name} is {container.status} (exit code {container.exit_code})"
            )
        return await probe(phone.device, phone.profile, timeout=self.config.health_timeout_s)

    # --- beyond the protocol ---------------------------------------------------------------------

    async def reap_orphans(self) -> list[str]:
        """Remove our pool's containers and data volumes that no phone of this provider holds; their names."""
        held_names = {p.name for p in self._phones.values()}
        held_volumes = {p.volume for p in self._phones.values()}
        stale = [
            c
            for c in await asyncio.to_thread(self.engine.ours, self.config.pool_id)
            if c.name not in held_names
        ]
        for container in stale:
            logger.warning("removing orphaned phone container", extra={"container": container.name})
            await asyncio.to_thread(
                self.engine.remove, container.id, stop_timeout_s=self.config.stop_timeout_s
            )
        volumes = [
            v
            for v in await asyncio.to_thread(self.engine.our_volumes, self.config.pool_id)
            if v not in held_volumes
        ]
        for volume in volumes:
            await asyncio.to_thread(self.engine.remove_volume, volume)
        return [c.name for c in stale] + volumes

    @property
    def pool_id(self) -> str:
        """This pool's id (the label on its containers and volumes): a personal phone's home pool."""
        return self.config.pool_id

    def container_name(self, serial: str) -> str | None:
        """The phone's container name (None for a serial we do not have); for operators and tests."""
        phone = self._find(serial)
        return None if phone is None else phone.name

    # --- internals -------------------------------------------------------------------------------

    async def _prepare(self) -> None:
        if self._prepared:
            return
        loop = asyncio.get_running_loop()
        if self._prepare_lock is None or self._prepare_lock[0] is not loop:
            self._prepare_lock = (loop, asyncio.Lock())
        async with self._prepare_lock[1]:
            if self._prepared:
                return
            c = self.config
            info = await asyncio.to_thread(self.engine.info)
            if c.check_host:
                check_engine_host(self.config, info, provider=self.name)
            await asyncio.to_thread(self.engine.ensure_image, c.image_ref, pull=c.pull == "missing")
            if c.golden_volume is not None and not await asyncio.to_thread(
                self.engine.has_volume, c.golden_volume
            ):
                raise ProviderError(
                    f"golden volume {c.golden_volume} does not exist on the engine", provider=self.name
                )
            apk = c.adb_keyboard_apk
            if apk is not None and not await asyncio.to_thread(Path(apk).is_file):
                raise ProviderError(f"adb_keyboard_apk {apk} is not a file", provider=self.name)
            reaped = await self.reap_orphans()
            if reaped:
                logger.warning("reaped orphans of an earlier pool manager", extra={"reaped": reaped})
            self._prepared = True

    @property
    def _start_count(self) -> int:
        return self.config.min_count

    def _log_extra(self, phone: _Phone) -> dict[str, Any]:
        return {"container": phone.name}

    async def _discard(self, phone: _Phone) -> None:
        await self._teardown(phone)

    async def _remove(self, phone: _Phone) -> None:
        await self._teardown(phone)

    async def _after_close(self) -> None:
        await asyncio.to_thread(self.engine.close)

    def _profile(self, profile: DeviceProfile | None) -> DeviceProfile:
        default = self.config.profile()
        if profile is None:
            return default
        if profile.android not in ("", default.android) and default.android:
            raise UnsupportedProfile(
                f"image {self.config.image_ref} runs Android {default.android}, not {profile.android}",
                provider=self.name,
            )
        return profile

    def _reserve(self, profile: DeviceProfile, tried: set[int]) -> _Phone:
        """Claim the lowest free port (no await between check and claim, so concurrent creates differ)."""
        c = self.config
        for port in range(c.base_port, c.base_port + c.max_count):
            if port in self._phones or port in tried:
                continue
            name = f"phonefleet-{c.pool_id}-{port}"
            # On a user-defined network the container's name is its address, and adbd keeps port 5555.
            serial = f"{name}:{ADB_PORT_IN_CONTAINER}" if c.named_network else f"{c.host}:{port}"
            device = AdbDevice(serial, server=self._server, timeouts=self._timeouts)
            phone = _Phone(port=port, name=name, profile=profile, device=device)
            self._phones[port] = phone
            return phone
        raise ProviderCapacity(
            f"{len(self._phones)} of {c.max_count} redroid phones run on this host (max_count)",
            provider=self.name,
            context={"max_count": c.max_count},
        )

    async def _boot(self, phone: _Phone) -> None:
        """A fresh volume and container for the phone, then wait for boot, set up the keyboard, wait for home."""
        c = self.config
        started = time.monotonic()
        if phone.personal is not None:
            data, phone.volume = phone.personal, None  # not the phone's: teardown leaves it
        else:
            phone.volume = data = f"{phone.name}-{secrets.token_hex(4)}"
            await asyncio.to_thread(self.engine.create_volume, phone.volume, c.labels_for("data", phone.port))
        volumes = binds(c.mounts)
        if c.golden_volume is not None:
            volumes[c.golden_volume] = ("/data-base", "ro")
            volumes[data] = ("/data-diff", "rw")
        else:
            volumes[data] = ("/data", "rw")
        environment = dict(c.environment)
        ports: dict[str, tuple[str, int]] | None = None
        if c.network_mode == "host":
            environment[ADB_PORT_ENV] = str(phone.port)
        elif not c.named_network:  # bridge: publish adbd on the phone's host port
            ports = {f"{ADB_PORT_IN_CONTAINER}/tcp": (c.publish_host, phone.port)}
        await asyncio.to_thread(
            self.engine.run,
            name=phone.name, image=c.image_ref, command=c.boot_args(phone.profile),
            labels=c.labels_for("phone", phone.port),
            volumes=volumes, network_mode=c.network_mode, ports=ports, environment=environment,
            privileged=c.privileged, memory_mb=c.memory_mb, cpus=c.cpus, devices=c.devices,
        )  # fmt: skip
        deadline = started + c.boot_timeout_s
        try:
            await self._wait_booted(phone, deadline)
            await self._select_keyboard(phone)
            await wait_for_launcher(
                phone.device, DEFAULT_LAUNCHER, timeout=max(deadline - time.monotonic(), 1.0)
            )
        except DeviceError as exc:
            raise PhoneStartFailed(
                f"{phone.serial}: phone did not come up: {exc.message}; container log: "
                f"{await asyncio.to_thread(self.engine.logs, phone.name)}",
                provider=self.name,
                device_id=phone.serial,
            ) from exc
        logger.info(
            "phone booted", extra={"serial": phone.serial, "seconds": round(time.monotonic() - started, 1)}
        )

    async def _wait_booted(self, phone: _Phone, deadline: float) -> None:
        """Until adb sees the phone and ``getprop sys.boot_completed`` is 1; the container must keep running."""
        last = "not connected yet"
        while True:
            container = await asyncio.to_thread(self.engine.inspect, phone.name)
            if container is None or container.status != "running":
                status = (
                    "gone" if container is None else f"{container.status} (exit code {container.exit_code})"
                )
                raise PhoneStartFailed(
                    f"{phone.serial}: container {phone.name} is {status}: "
                    f"{await asyncio.to_thread(self.engine.logs, phone.name)}",
                    provider=self.name,
                    device_id=phone.serial,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PhoneStartFailed(
                    f"{phone.serial}: not booted within {self.config.boot_timeout_s:g} s (last: {last}); "
                    f"container log: {await asyncio.to_thread(self.engine.logs, phone.name)}",
                    provider=self.name,
                    device_id=phone.serial,
                )
            try:
                await phone.device.connect(timeout=min(remaining, 5.0))
                out = await phone.device.shell("getprop sys.boot_completed", timeout=min(remaining, 5.0))
                if out.stdout.strip() == "1":
                    return
                last = f"sys.boot_completed={out.stdout.strip()!r}"
            except DeviceError as exc:
                last = f"{exc.code}: {exc.message}"
            await asyncio.sleep(_POLL_S)

    async def _select_keyboard(self, phone: _Phone) -> None:
        """Install ADB Keyboard if the phone lacks it (and an APK is configured), then ``ime enable`` and ``ime set``."""
        device, limit = phone.device, self.config.command_timeout_s
        listed = await device.shell(f"pm list packages {ADB_KEYBOARD_PACKAGE}", timeout=limit, check=True)
        if f"package:{ADB_KEYBOARD_PACKAGE}" not in listed.stdout.split():
            apk = self.config.adb_keyboard_apk
            if apk is None:
                logger.warning(
                    "phone has no ADB Keyboard and no APK is configured", extra={"serial": phone.serial}
                )
                return
            await device.push(await asyncio.to_thread(Path(apk).read_bytes), _APK_ON_PHONE, timeout=limit)
            await device.shell(f"pm install -r -t {_APK_ON_PHONE}", timeout=limit, check=True)
            await device.shell(f"rm -f {_APK_ON_PHONE}", timeout=limit)
        await device.shell(f"ime enable {ADB_KEYBOARD_IME}", timeout=limit, check=True)
        await device.shell(f"ime set {ADB_KEYBOARD_IME}", timeout=limit, check=True)

    async def _describe(self, phone: _Phone) -> DeviceSpec:
        """The spec with the Android version and packages the booted phone reports."""
        limit = self.config.command_timeout_s
        out = await phone.device.shell(
            "getprop ro.build.version.release; pm list packages", timeout=limit, check=True
        )
        lines = out.stdout.splitlines()
        apps = sorted(x.removeprefix("package:").strip() for x in lines[1:] if x.startswith("package:"))
        android = lines[0].strip() if lines else phone.profile.android
        profile = phone.profile.model_copy(update={"android": android, "apps": tuple(apps)})
        return DeviceSpec(
            provider=self.name, serial=phone.serial, profile=profile, labels=dict(self.config.labels)
        )

    async def _teardown(self, phone: _Phone) -> None:
        """Disconnect adb, remove the container, then its volume (the previous user's data goes with it)."""
        await phone.disconnect(self.config.command_timeout_s)
        await asyncio.to_thread(self.engine.remove, phone.name, stop_timeout_s=self.config.stop_timeout_s)
        if phone.volume is not None:
            await asyncio.to_thread(self.engine.remove_volume, phone.volume)


__all__ = ["ADB_KEYBOARD_PACKAGE", "RedroidConfig", "RedroidProvider"]
