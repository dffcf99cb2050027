"""Run several virtual phones in one process, each with its own adbd on host:base_port+i (or an OS-chosen port)."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from device_pool.sim.adbd import AdbDaemon
from device_pool.sim.phone import PhoneConfig, VirtualPhone

logger = logging.getLogger(__name__)


class SimFleet:
    """N phones, phone i on ``host:base_port+i`` with its data under ``data_root/phone-<base_port+i>``.

    Phone i gets seed ``config.seed + i`` so a fleet is deterministic but its phones differ. With
    ``base_port`` 0 every phone listens on a port the OS picks (``ports`` after ``start``), so no
    other process can take it between a choice and the bind; phone i is still named after
    ``base_port + i`` (data in ``phone-<i>``, serial number ``PFSIM<i>``), which keeps names unique.
    """

    def __init__(
        self,
        count: int,
        base_port: int,
        data_root: Path,
        config: PhoneConfig | None = None,
        host: str = "127.0.0.1",
        reset: bool = False,
        require_auth: bool = False,
        data_dir: Path | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        if data_dir is not None and count != 1:
            raise ValueError("data_dir names one phone's data: count must be 1")
        if base_port < 0:
            raise ValueError("base_port must not be negative")
        base = config or PhoneConfig()
        # Commands run on threads (screencap encodes, file I/O); a few per phone keeps concurrent
        # streams of one phone from queueing behind another phone's slow command.
        self.executor = ThreadPoolExecutor(max_workers=max(8, 4 * count), thread_name_prefix="sim-shell")
        self.phones: list[VirtualPhone] = []
        self.daemons: list[AdbDaemon] = []
        for i in range(count):
            port = base_port + i
            cfg = replace(base, seed=base.seed + i, serial=f"PFSIM{port}")
            # data_dir: the phone runs on data kept elsewhere (a personal phone's), not its own.
            phone = VirtualPhone(Path(data_dir) if data_dir is not None else Path(data_root) / f"phone-{port}", cfg)
            if reset:
                phone.factory_reset()
            self.phones.append(phone)
            listen = 0 if base_port == 0 else port
            self.daemons.append(
                AdbDaemon(phone, host, listen, executor=self.executor, require_auth=require_auth)
            )

    @property
    def serials(self) -> list[str]:
        return [d.serial for d in self.daemons]

    @property
    def ports(self) -> list[int]:
        """The phones' ports, in order; the OS-chosen ones once ``start`` returned."""
        return [d.port for d in self.daemons]

    async def start(self) -> None:
        try:
            for daemon in self.daemons:
                await daemon.start()
        except OSError:
            await self.stop()
            raise

    async def stop(self) -> None:
        await asyncio.gather(*(d.stop() for d in self.daemons), return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)
