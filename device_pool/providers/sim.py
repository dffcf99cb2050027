"""SimProvider: virtual phones (``device_pool.sim``), one child process per phone, reset over adb."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

import device_pool
from device_pool.driver.adb_server import AdbServerClient
from device_pool.driver.device import AdbDevice, DeviceTimeouts
from device_pool.errors import CommandFailed, DeviceError
from device_pool.providers.base import DeviceProfile, DeviceSpec, Health
from device_pool.providers.checks import DEFAULT_LAUNCHER, probe, wait_for_launcher
from device_pool.providers.errors import (
    PhoneStartFailed,
    PortTaken,
    ProviderCapacity,
    ProviderError,
    UnsupportedProfile,
)
from device_pool.providers.made import MadePhone, MadePhones
from device_pool.providers.sim_process import EXIT_CANNOT_LISTEN

logger = logging.getLogger(__name__)

SIM_ANDROID = "13"  # what the virtual phone reports as ro.build.version.release
_POLL_S = 0.05
_LOG_TAIL_BYTES = 4000
# `-m` puts the working directory first on sys.path: started from here, the child runs the same
# device_pool source as this process, installed or not.
_SOURCE_ROOT = Path(device_pool.__file__).resolve().parent.parent


class SimProviderConfig(BaseModel):
    """Where and how the virtual phones run; phone ports are ``[base_port, base_port + max_count)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_root: Path  # phone data in data_root/phone-PORT, its log in data_root/phone-PORT.log
    # Personal phones' data, one directory each (docs/personal-phones.md); None: not supported.
    personal_root: Path | None = None
    count: int = Field(1, ge=0)  # phones start() brings up
    max_count: int = Field(8, ge=1)  # create() refuses beyond this many
    base_port: int = Field(6520, ge=1, le=65535)
    width: int = Field(1080, gt=0)
    height: int = Field(2400, gt=0)
    density: int = Field(420, gt=0)
    seed: int = 0  # the phone on base_port+i is built from seed+i, as `phonefleet sim` does
    host: str = "127.0.0.1"  # where the phones listen; serials are host:port
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    labels: dict[str, str] = Field(default_factory=dict)
    python: str = Field(default_factory=lambda: sys.executable)  # interpreter for the phone processes
    start_timeout_s: float = Field(30.0, gt=0)
    stop_timeout_s: float = Field(10.0, gt=0)
    command_timeout_s: float = Field(10.0, gt=0)
    health_timeout_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _fits(self) -> SimProviderConfig:
        if self.count > self.max_count:
            raise ValueError(f"count {self.count} exceeds max_count {self.max_count}")
        if self.base_port + self.max_count - 1 > 65535:
            raise ValueError("base_port + max_count runs past port 65535")
        return self


@dataclass
class _Phone(MadePhone):
    seed: int = 0
    proc: subprocess.Popen[bytes] | None = None
    personal: Path | None = None  # the personal phone's data it runs on now, if any


class SimProvider(MadePhones[_Phone]):
    """Virtual phones, each in its own ``python -m device_pool.providers.sim_process`` child process.

    One process per phone rather than one ``SimFleet`` for all: creating or destroying a phone never
    restarts its neighbours, a crashed or hung phone is only that phone (its pid is the one we stop),
    and each phone's CPU work (screencap encodes) runs on its own GIL.
    """

    name = "sim"
    apps_from = "the virtual phone"
    # Personal data in personal_root, one folder every pool shares in deployments: no home pool.
    personal_data_local = False

    def __init__(self, config: SimProviderConfig) -> None:
        super().__init__()
        self.config = config
        self._server = AdbServerClient(config.adb_host, config.adb_port, timeout=config.command_timeout_s)
        self._timeouts = DeviceTimeouts(command=config.command_timeout_s, connect=config.start_timeout_s)

    def __repr__(self) -> str:
        return (
            f"SimProvider(ports {self.config.base_port}+{self.config.max_count}, {len(self._phones)} phones)"
        )

    # --- the Provider protocol -------------------------------------------------------------------

    async def reset(self, serial: str) -> None:
        """``phonefleet-sim factory-reset`` over adb, then wait for the launcher; a phone that fails it is restarted.

        A restart starts the phone's process again from its seed: factory state by construction.
        Raises PhoneStartFailed when even that does not bring the phone online.
        """
        phone = self._require(serial)
        if phone.personal is not None:
            # Never a factory reset over a personal phone's data: back on its own data first.
            await self.detach(serial)
            return
        if self._running(phone) and await _port_open(self.config.host, phone.port):
            try:
                await self._factory_reset(phone)
                logger.info("phone reset", extra={"serial": serial})
                return
            except DeviceError as exc:
                # Hung or half-dead: the restart below cannot leave the previous user's data behind.
                logger.warning(
                    "reset over adb failed; restarting the phone",
                    extra={"serial": serial, "error": exc.message},
                )
        else:
            logger.warning("phone process down or not listening; restarting it", extra={"serial": serial})
        await self._stop(phone)
        await self._boot_again(phone)
        logger.info("phone restarted in factory state", extra={"serial": serial, "pid": phone.proc.pid})

    async def health(self, serial: str) -> Health:
        """The process is alive, then the ADB probe (state, echo, screen size); never raises for the phone."""
        phone = self._require(serial)
        if not self._running(phone):
            code = None if phone.proc is None else phone.proc.returncode
            return Health(False, f"phone process is not running (exit status {code})")
        return await probe(phone.device, phone.profile, timeout=self.config.health_timeout_s)

    # --- personal phones (the PersonalData protocol) --------------------------------------------

    async def attach(self, serial: str, personal_phone_id: uuid.UUID) -> None:
        """Restart the phone on the personal phone's data directory (made in factory state the first
        time); raises ``ProviderError`` when no ``personal_root`` is configured, ``PhoneStartFailed``."""
        phone = self._require(serial)
        directory = self._personal_dir(personal_phone_id)
        await self._stop(phone)
        phone.personal = directory
        await self._boot_again(phone)
        logger.info("personal phone attached", extra={"serial": serial, "personal_phone_id": str(personal_phone_id)})

    async def detach(self, serial: str) -> None:
        """Stop the phone (the personal phone's data stays in its directory) and start it again on its
        own data in factory state."""
        phone = self._require(serial)
        await self._stop(phone)
        phone.personal = None
        await self._boot_again(phone)
        logger.info("personal phone detached; phone in factory state", extra={"serial": serial})

    async def remove_data(self, personal_phone_id: uuid.UUID) -> None:
        """Remove the personal phone's data directory for good (no phone may run on it)."""
        directory = self._personal_dir(personal_phone_id)
        if any(phone.personal == directory for phone in self._phones.values()):
            raise ProviderError(f"personal phone {personal_phone_id} still runs on a phone", provider=self.name)
        await asyncio.to_thread(shutil.rmtree, directory, True)

    def _personal_dir(self, personal_phone_id: uuid.UUID) -> Path:
        if self.config.personal_root is None:
            raise ProviderError("this pool keeps no personal phones (no personal_root)", provider=self.name)
        return self.config.personal_root / str(uuid.UUID(str(personal_phone_id)))

    # --- beyond the protocol ---------------------------------------------------------------------

    def pid(self, serial: str) -> int | None:
        """The pid of the phone's process (None when it has none); for operators and tests."""
        phone = self._find(serial)
        return None if phone is None or phone.proc is None else phone.proc.pid

    # --- internals -------------------------------------------------------------------------------

    @property
    def _start_count(self) -> int:
        return self.config.count

    def _log_extra(self, phone: _Phone) -> dict[str, Any]:
        return {"pid": self.pid(phone.serial)}

    async def _boot(self, phone: _Phone) -> None:
        await self._launch(phone)

    async def _discard(self, phone: _Phone) -> None:
        await self._stop(phone)  # reaps an exited process too

    async def _remove(self, phone: _Phone) -> None:
        """Stop the phone's process and remove its data (also when the stop failed)."""
        try:
            await self._stop(phone)
        finally:
            await asyncio.to_thread(shutil.rmtree, self._data_dir(phone.port), True)

    @staticmethod
    def _running(phone: _Phone) -> bool:
        return phone.proc is not None and phone.proc.poll() is None

    async def _factory_reset(self, phone: _Phone) -> None:
        limit = self.config.command_timeout_s
        await phone.device.connect(timeout=limit)
        command = "phonefleet-sim factory-reset"
        out = await phone.device.shell(command, timeout=limit, check=True)
        if "Factory reset complete" not in out.stdout:
            raise CommandFailed(
                f"{phone.serial}: `{command}` did not confirm: {out.output.strip()[:200]}",
                device_id=phone.serial,
                command=command,
                exit_code=out.exit_code,
                output=out.output,
            )
        await wait_for_launcher(phone.device, DEFAULT_LAUNCHER, timeout=limit)

    def _data_dir(self, port: int) -> Path:
        return self.config.data_root / f"phone-{port}"

    def _profile(self, profile: DeviceProfile | None) -> DeviceProfile:
        c = self.config
        if profile is None:
            return DeviceProfile(width=c.width, height=c.height, density=c.density, android=SIM_ANDROID)
        if profile.android not in ("", SIM_ANDROID):
            raise UnsupportedProfile(
                f"the virtual phone runs Android {SIM_ANDROID}, not {profile.android}", provider=self.name
            )
        return profile

    def _reserve(self, profile: DeviceProfile, tried: set[int]) -> _Phone:
        """Claim the lowest free port (no await between the check and the claim, so concurrent creates differ)."""
        c = self.config
        for port in range(c.base_port, c.base_port + c.max_count):
            if port in self._phones or port in tried or not _bindable(c.host, port):
                continue
            device = AdbDevice(f"{c.host}:{port}", server=self._server, timeouts=self._timeouts)
            phone = _Phone(port=port, seed=c.seed + port - c.base_port, profile=profile, device=device)
            self._phones[port] = phone
            return phone
        raise ProviderCapacity(
            f"no free port in {c.base_port}..{c.base_port + c.max_count - 1} "
            f"({len(self._phones)} of {c.max_count} phones run)",
            provider=self.name,
            context={"max_count": c.max_count},
        )

    async def _launch(self, phone: _Phone) -> None:
        """Start the phone's process from factory state and wait (with a deadline) until adb sees it online."""
        c = self.config
        c.data_root.mkdir(parents=True, exist_ok=True)
        log_path = c.data_root / f"phone-{phone.port}.log"
        p = phone.profile
        command = [
            c.python, "-m", "device_pool.providers.sim_process",
            "--port", str(phone.port), "--host", c.host, "--data-root", str(c.data_root),
            "--width", str(p.width), "--height", str(p.height), "--density", str(p.density),
            "--seed", str(phone.seed), "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        # Its own data starts in factory state every time; a personal phone's data is kept.
        command += ["--reset"] if phone.personal is None else ["--data-dir", str(phone.personal)]
        # Popen rather than asyncio's subprocess: a phone outlives any one event loop (tests and the
        # CLI run several), and an asyncio Process is bound to the loop that made it.
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            phone.proc = subprocess.Popen(
                command, cwd=_SOURCE_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        logger.info("phone starting", extra={"serial": phone.serial, "pid": phone.proc.pid})
        deadline = time.monotonic() + c.start_timeout_s
        while True:
            # The exit status first: once our child failed to listen, whoever holds the port answers.
            code = phone.proc.poll()
            if code == EXIT_CANNOT_LISTEN:
                raise PortTaken(phone.port)
            if code is not None or time.monotonic() > deadline:
                await self._stop(phone)
                what = (
                    f"exited with {code}"
                    if code is not None
                    else f"not listening after {c.start_timeout_s:g} s"
                )
                raise PhoneStartFailed(
                    f"{phone.serial}: phone process {what}: {_tail(log_path)}",
                    provider=self.name,
                    device_id=phone.serial,
                )
            if await _port_open(c.host, phone.port):
                break
            await asyncio.sleep(_POLL_S)
        try:
            await phone.device.connect(timeout=max(deadline - time.monotonic(), 1.0))
            await wait_for_launcher(phone.device, DEFAULT_LAUNCHER, timeout=c.command_timeout_s)
        except DeviceError as exc:
            await self._stop(phone)
            raise PhoneStartFailed(
                f"{phone.serial}: phone did not come online: {exc.message}",
                provider=self.name,
                device_id=phone.serial,
            ) from exc

    async def _describe(self, phone: _Phone) -> DeviceSpec:
        """Ask the running phone for its Android version and packages."""
        limit = self.config.command_timeout_s
        release = await phone.device.shell("getprop ro.build.version.release", timeout=limit, check=True)
        packages = await phone.device.shell("pm list packages", timeout=limit, check=True)
        apps = sorted(
            line.removeprefix("package:").strip()
            for line in packages.stdout.splitlines()
            if line.startswith("package:")
        )
        profile = phone.profile.model_copy(update={"android": release.stdout.strip(), "apps": tuple(apps)})
        return DeviceSpec(
            provider=self.name, serial=phone.serial, profile=profile, labels=dict(self.config.labels)
        )

    async def _stop(self, phone: _Phone) -> None:
        """Disconnect adb from the phone, then terminate → wait → kill its process (this pid only)."""
        await phone.disconnect(self.config.command_timeout_s)
        proc = phone.proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                await asyncio.to_thread(proc.wait)  # reap it, so its pid is gone too
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, self.config.stop_timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("phone ignored SIGTERM; killing it", extra={"serial": phone.serial})
            proc.kill()
            await asyncio.to_thread(proc.wait, self.config.stop_timeout_s)


def _bindable(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as asyncio's servers set it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def _port_open(host: str, port: int) -> bool:
    try:
        async with asyncio.timeout(0.5):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()[-_LOG_TAIL_BYTES:]
    except OSError:
        return "(no log)"
    return data.decode("utf-8", errors="replace").strip() or "(empty log)"


__all__ = ["SIM_ANDROID", "SimProvider", "SimProviderConfig"]
