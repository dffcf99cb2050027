"""A small asyncio client for the adb server (host services, device streams).

It starts no server: the one that starts a server owns it and stops it (``phonefleet pool`` and
``phonefleet run``, through ``device_pool/pool/adb_supervisor.py``); a daemon started here would
outlive whoever started it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

from device_pool.driver.errors import adb_errors
from device_pool.driver.wire import AdbConnection
from device_pool.errors import DeviceOffline, DeviceTimeout

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5037

# A phone that stays `offline` this long after `adb connect` is reconnected from scratch: adb 29
# otherwise keeps a dead transport for ~10 s after the phone restarted.
_RECONNECT_AFTER_S = 3.0
_POLL_S = 0.1


def default_adb_path() -> str:
    """Debian's ``adb`` when it is on PATH, else the binary shipped inside the adbutils wheel."""
    found = shutil.which("adb")
    if found:
        return found
    import adbutils  # imported late: only needed when no system adb exists

    return adbutils.adb_path()


def parse_features(reply: str) -> frozenset[str]:
    return frozenset(name.strip() for name in reply.split(",") if name.strip())


class AdbServerClient:
    """Talks to one adb server at host:port; every call opens its own socket, so calls run concurrently.

    Every public method raises only ``DeviceError`` subclasses and takes a ``timeout`` in seconds.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        adb_path: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._adb_path = adb_path

    def __repr__(self) -> str:
        return f"AdbServerClient({self.host!r}, {self.port})"

    @property
    def adb_path(self) -> str:
        if self._adb_path is None:
            self._adb_path = default_adb_path()
        return self._adb_path

    # --- plumbing --------------------------------------------------------------------------------

    async def open_connection(self) -> AdbConnection:
        """A fresh socket to the server (raw errors; callers wrap it in ``adb_errors``)."""
        return await AdbConnection.open(self.host, self.port)

    async def open_service(self, serial: str, service: str) -> AdbConnection:
        """Switch a fresh socket to ``serial`` and open ``service`` on it (raw errors, caller wraps)."""
        conn = await self.open_connection()
        try:
            await conn.request(f"host:transport:{serial}")
            await conn.request(service)
        except BaseException:
            conn.close()
            raise
        return conn

    async def host_query(self, request: str) -> str:
        """One host request and its ``%04x``-prefixed answer (raw errors; callers wrap them)."""
        async with await self.open_connection() as conn:
            await conn.request(request)
            return await conn.read_hex_block()

    async def _query(self, request: str, serial: str | None, timeout: float | None) -> str:
        limit = self.timeout if timeout is None else timeout
        with adb_errors(serial, request, timeout=limit):
            async with asyncio.timeout(limit):
                return await self.host_query(request)

    # --- host services ---------------------------------------------------------------------------

    async def version(self, *, timeout: float | None = None) -> int:
        """The server's internal protocol version (41 for adb 1.0.41)."""
        return int(await self._query("host:version", None, timeout), 16)

    async def devices(self, *, timeout: float | None = None) -> dict[str, str]:
        """Serial → state (``device``, ``offline``, ``unauthorized`` …) for every phone the server knows."""
        listing = await self._query("host:devices", None, timeout)
        result: dict[str, str] = {}
        for line in listing.splitlines():
            serial, _, state = line.partition("\t")
            if serial:
                result[serial] = state.strip()
        return result

    async def connect_device(self, address: str, *, timeout: float | None = None) -> str:
        """``adb connect`` host:port; returns the server's message (it says ``failed …`` on failure)."""
        return await self._query(f"host:connect:{address}", address, timeout)

    async def disconnect_device(self, address: str, *, timeout: float | None = None) -> str:
        """``adb disconnect`` host:port; returns the server's message."""
        return await self._query(f"host:disconnect:{address}", address, timeout)

    async def state(self, serial: str, *, timeout: float | None = None) -> str:
        """The phone's state as the server sees it; DeviceOffline when the server does not know it."""
        return (await self._query(f"host-serial:{serial}:get-state", serial, timeout)).strip()

    async def features(self, serial: str, *, timeout: float | None = None) -> frozenset[str]:
        """The features the phone and this server share (``shell_v2``, ``stat_v2`` …)."""
        return parse_features(await self._query(f"host-serial:{serial}:features", serial, timeout))

    async def bring_online(self, serial: str, *, timeout: float) -> None:
        """``adb connect`` a TCP serial (retrying) until its state is ``device``; DeviceOffline at the deadline."""
        tcp = ":" in serial
        last = "no answer"
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if tcp:
                        try:
                            last = await self.connect_device(serial, timeout=timeout)
                        except DeviceOffline as exc:
                            last = str(exc)
                        if "connected to" not in last or last.startswith(("failed", "unable", "cannot")):
                            await asyncio.sleep(_POLL_S)
                            continue
                    last = await self._wait_for_state(serial, _RECONNECT_AFTER_S if tcp else timeout)
                    if last == "device":
                        logger.info("phone online", extra={"serial": serial})
                        return
                    # Still offline: drop the stale transport so the next connect starts afresh.
                    try:
                        await self.disconnect_device(serial, timeout=timeout)
                    except DeviceOffline:
                        pass
        except (TimeoutError, DeviceTimeout) as exc:
            raise DeviceOffline(
                f"{serial}: not online within {timeout:g} s (last: {last})",
                device_id=serial,
                command="connect",
                output=last,
            ) from exc

    async def _wait_for_state(self, serial: str, patience: float) -> str:
        deadline = time.monotonic() + patience
        state = "unknown"
        while time.monotonic() < deadline:
            try:
                state = await self.state(serial, timeout=max(patience, 1.0))
            except DeviceOffline as exc:
                state = str(exc)
            if state == "device":
                return state
            await asyncio.sleep(_POLL_S)
        return state

    # --- the server process ----------------------------------------------------------------------

    async def kill(self, *, timeout: float | None = None) -> None:
        """Ask the server to exit (``adb kill-server``); a server that is already gone is fine."""
        limit = self.timeout if timeout is None else timeout
        try:
            with adb_errors(None, "host:kill", timeout=limit):
                async with asyncio.timeout(limit):
                    async with await self.open_connection() as conn:
                        await conn.request("host:kill")
        except DeviceOffline:
            pass
