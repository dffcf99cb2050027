"""The adb server as part of the pool: started, probed, restarted when it dies or wedges, its phones reconnected.

Every phone the pool holds is reached through one adb server (host:port from ``phonefleet pool
--adb-port``). When that server dies, every phone drops at once; when it wedges (the process is
alive and holds its port but answers nothing, as device farms report: phones listed as connected
that nothing reaches), every call through it hangs until its deadline. ``AdbServerSupervisor``:

- ``start()``: adopts a server that answers on the port, or starts one as its own child
  (``adb -P PORT server nodaemon``, in a session of its own, output to ``log_path``), so it knows
  the pid it may kill and stop;
- ``run()``: probes ``host:version`` every ``interval_s`` with a ``probe_timeout_s`` deadline.
  *Dead* (connection refused: nothing listens) → a new server is started at once. *Wedged*
  (``misses`` probes in a row unanswered, back to back) → the wedged process is SIGKILLed (a wedged
  adb server ignores ``host:kill``; a stopped one, SIGTERM) and a new one started. With the
  defaults a dead server is noticed within ``interval_s`` (1 s), a wedged one within
  ``interval_s + misses × probe_timeout_s`` (6 s): both inside the 10 s the pool promises;
- after a restart, ``adb connect``s every TCP phone the providers list (``bring_online``, all at
  once, ``reconnect_timeout_s`` each); a USB phone the new server finds by itself;
- ``answering`` and ``generation`` (one more per restart) tell the pool manager not to hold an
  outage against the phones: it leaves them alone while the server is down, and a check that failed
  across a restart is not the phone's failure (``PoolManager``, ``manager.py``).

**Whose server it kills.** A server this supervisor started is its own: killed when wedged,
stopped by ``close()``. A server it found answering at start (a developer's, a test's, one a worker
started first) is killed when wedged only with ``owned=True`` (``phonefleet pool
--adb-server-owned``): then the adb process listening on the port (found through ``/proc``, its
name checked) is SIGKILLed, whoever started it. Without it such a server is reported (ERROR, once
per outage) and left alone; it is probed on, and used again if it comes back. A dead server is
always replaced: nothing listens, so nothing is taken from anyone. In production the pool runs the
only adb server of its container, which it started itself: its own either way.

Each restart is logged (WARNING: why, how long the server had been silent, how long the restart
took, phones reconnected) and kept in ``restarts`` (``AdbRestart``, monotonic times).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from device_pool.driver.adb_server import AdbServerClient
from device_pool.errors import DeviceError, DeviceOffline, PhoneFleetError
from device_pool.providers.base import Provider

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEAD = "dead"  # connection refused: no server listens on the port
WEDGED = "wedged"  # the port is held, but nothing answers within the deadline

_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_POLL_S = 0.05
_GONE_WAIT_S = 5.0  # after a SIGKILL: until the killed server's port refuses connections


@dataclass
class AdbRestart:
    """One restart of the adb server; times are ``time.monotonic()``."""

    reason: str  # DEAD or WEDGED
    detail: str  # the failed probe's error
    last_answer_at: float  # the last probe the server answered
    noticed_at: float  # when the supervisor gave up on it
    killed_pid: int | None = None  # the wedged process it SIGKILLed
    answering_at: float | None = None  # a new server answered
    reconnected_at: float | None = None  # every phone was given its adb connect
    phones: int = 0  # TCP phones to reconnect
    online: int = 0  # of those, back in state `device`


class AdbServerSupervisor:
    """Keeps one adb server answering for the pool (see the module docstring)."""

    def __init__(
        self,
        client: AdbServerClient,
        *,
        providers: Sequence[Provider] = (),
        owned: bool = False,
        interval_s: float = 1.0,
        probe_timeout_s: float = 2.5,
        misses: int = 2,
        start_timeout_s: float = 10.0,
        reconnect_timeout_s: float = 8.0,
        stop_timeout_s: float = 1.0,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if min(interval_s, probe_timeout_s, start_timeout_s, reconnect_timeout_s, stop_timeout_s) <= 0:
            raise ValueError("the supervisor's intervals and timeouts must be positive")
        if misses < 1:
            raise ValueError("misses must be at least 1")
        self.client = client
        self.providers = list(providers)
        self.owned = owned
        self.interval_s = interval_s
        self.probe_timeout_s = probe_timeout_s
        self.misses = misses
        self.start_timeout_s = start_timeout_s
        self.reconnect_timeout_s = reconnect_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_path = log_path
        self.env = None if env is None else dict(env)
        self.restarts: list[AdbRestart] = []
        self.generation = 0  # one more per restart: a check that spans a restart is not the phone's fault
        self.refusals = 0  # wedged servers left alone: not this pool's to kill
        self.answered = 0  # probes answered by run(): its heartbeat, for operators and tests
        self._refused_this_outage = False
        self._answering = False
        self._proc: subprocess.Popen[bytes] | None = None  # the server this supervisor started
        self._stopping = asyncio.Event()

    def __repr__(self) -> str:
        return f"AdbServerSupervisor({self.client.host}:{self.client.port}, pid {self.pid})"

    @property
    def answering(self) -> bool:
        """Whether the last probe was answered (False from the first failed one until the restart is done)."""
        return self._answering

    @property
    def pid(self) -> int | None:
        """The pid of the server this supervisor started and still runs; None for an adopted one."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def _local(self) -> bool:
        return self.client.host in _LOCAL_HOSTS

    # --- the lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt the server answering on the port, or start one; DeviceOffline when none comes up."""
        if await self.answers():
            logger.info("adb server already answering; using it", extra=self._where())
        else:
            await self._start_server()
        self._answering = True

    async def run(self) -> None:
        """Probe until ``stop()``; restart a dead or wedged server (see the module docstring)."""
        logger.info("adb server supervisor running", extra={**self._where(), "owned": self.owned})
        last_answer = time.monotonic()
        misses = 0
        while not self._stopping.is_set():
            probed, failure = await self._unless_stopped(self._probe())
            if not probed:
                break
            if failure is None:
                if not self._answering:
                    logger.info("adb server answering again", extra=self._where())
                self._answering, misses, last_answer = True, 0, time.monotonic()
                self.answered += 1
                self._refused_this_outage = False
                await self._pause()
                continue
            kind, detail = failure
            self._answering = False
            if kind == WEDGED:
                misses += 1
                if misses < self.misses:
                    continue  # probe again at once: one slow answer is not a wedge
            misses = 0
            # A restart in progress is abandoned on stop(): close() stops the server it started.
            try:
                await self._unless_stopped(self._restart(kind, detail, last_answer))
            except (PhoneFleetError, OSError):  # e.g. not allowed to signal the wedged process
                logger.exception("adb server restart failed; retrying", extra=self._where())
            await self._pause()
        logger.info("adb server supervisor stopped", extra=self._where())

    async def _unless_stopped(self, work: Awaitable[T]) -> tuple[bool, T | None]:
        """(True, its result), or (False, None) when ``stop()`` came first (``work`` is cancelled)."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, stopping, return_exceptions=True)
        if task.cancelled():
            return False, None
        return True, task.result()

    def stop(self) -> None:
        """Ask ``run()`` to return (at once, or after the restart in progress)."""
        self._stopping.set()

    async def close(self) -> None:
        """Stop the server this supervisor started (SIGTERM, then SIGKILL); an adopted one is left running."""
        self.stop()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        logger.info("stopping the adb server", extra={**self._where(), "pid": proc.pid})
        # A wedged one may be stopped (SIGSTOP), which keeps a SIGTERM pending: it gets SIGKILL at once.
        if self._answering:
            proc.terminate()
        else:
            proc.kill()
        try:
            await asyncio.to_thread(proc.wait, self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                await asyncio.to_thread(proc.wait, self.stop_timeout_s)
            except subprocess.TimeoutExpired:  # stuck in the kernel: nothing more a signal can do
                logger.error(
                    "adb server did not exit after SIGKILL", extra={**self._where(), "pid": proc.pid}
                )

    async def answers(self, timeout: float | None = None) -> bool:
        """One probe now: whether the server answers ``host:version`` within the deadline."""
        return await self._probe(timeout) is None

    # --- probing and restarting -------------------------------------------------------------------

    async def _probe(self, timeout: float | None = None) -> tuple[str, str] | None:
        """None when the server answered; else (DEAD or WEDGED, the error)."""
        try:
            await self.client.version(timeout=self.probe_timeout_s if timeout is None else timeout)
        except DeviceOffline as exc:
            cause = exc.__cause__
            refused = isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
            return (DEAD if refused else WEDGED), exc.message
        except DeviceError as exc:  # DeviceTimeout, AdbProtocolError: something holds the port
            return WEDGED, exc.message
        return None

    async def _restart(self, reason: str, detail: str, last_answer: float) -> None:
        record = AdbRestart(
            reason=reason, detail=detail, last_answer_at=last_answer, noticed_at=time.monotonic()
        )
        extra = {**self._where(), "reason": reason, "error": detail,
                 "silent_s": round(record.noticed_at - last_answer, 2)}  # fmt: skip
        if reason == WEDGED and not await self._kill_wedged(record, extra):
            return
        logger.warning("adb server %s; starting a new one", reason, extra=extra)
        self.restarts.append(record)
        try:
            await self._start_server()
        except DeviceError as exc:
            logger.error("adb server restart failed; retrying", extra={**extra, "error": exc.message})
            return
        record.answering_at = time.monotonic()
        self.generation += 1
        await self._reconnect(record)
        self._answering = True
        logger.warning(
            "adb server restarted",
            extra={**extra, "pid": self.pid, "took_s": round(time.monotonic() - record.noticed_at, 2),
                   "phones": record.phones, "online": record.online},
        )  # fmt: skip

    async def _kill_wedged(self, record: AdbRestart, extra: dict[str, object]) -> bool:
        """SIGKILL the wedged server if it is this pool's to kill; True once its port is free."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            pids = [proc.pid]
        elif self.owned and self._local:
            pids = await asyncio.to_thread(adb_listeners, self.client.port)
            if not pids:
                logger.error("adb server wedged, but no adb process listens on its port", extra=extra)
                return False
        else:
            # Said once per outage: the supervisor keeps probing, and this is true until it answers.
            level = logging.DEBUG if self._refused_this_outage else logging.ERROR
            self._refused_this_outage = True
            self.refusals += 1
            logger.log(
                level,
                "adb server wedged, and it is not this pool's to kill (it was running before the pool; "
                "--adb-server-owned lets the pool kill it): its phones are out of reach until it answers",
                extra=extra,
            )
            return False
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        record.killed_pid = pids[0]
        logger.warning("adb server wedged; killed it", extra={**extra, "pid": pids[0]})
        if proc is not None and proc.pid in pids:
            with contextlib.suppress(subprocess.TimeoutExpired):  # the port check below decides
                await asyncio.to_thread(proc.wait, _GONE_WAIT_S)  # reap it: its pid is gone too
            self._proc = None
        deadline = time.monotonic() + _GONE_WAIT_S
        while True:
            failure = await self._probe(timeout=1.0)
            # Refused: the port is free. Answered: someone's server took it at once; start() adopts it.
            if failure is None or failure[0] == DEAD:
                return True
            if time.monotonic() > deadline:
                logger.error("the killed adb server's port is still held", extra=extra)
                return False
            await asyncio.sleep(_POLL_S)

    async def _start_server(self) -> None:
        """``adb -P PORT server nodaemon`` as this supervisor's child, until it answers; DeviceOffline if not."""
        if not self._local:
            raise DeviceOffline(
                f"no adb server answers at {self.client.host}:{self.client.port}, and the pool "
                "starts servers on this host only",
                command="start-server",
            )
        command = [self.client.adb_path, "-P", str(self.client.port), "server", "nodaemon"]
        # Its own session: a terminal's Ctrl-C reaches the pool, which disconnects its phones
        # through this server before it stops it (close()).
        try:
            with contextlib.ExitStack() as stack:
                log = (
                    subprocess.DEVNULL
                    if self.log_path is None
                    else stack.enter_context(open(self.log_path, "ab"))
                )
                proc = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=self.env, start_new_session=True,
                )  # fmt: skip
        except OSError as exc:  # no adb binary, an unwritable log
            raise DeviceOffline(
                f"cannot run `{' '.join(command)}`: {exc}", command=" ".join(command)
            ) from exc
        self._proc = proc
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if await self.answers(timeout=1.0):
                if proc.poll() is not None:
                    # Ours could not listen, yet a server answers: someone else's won the port. Use it.
                    self._proc = None
                    logger.info("another adb server took the port first; using it", extra=self._where())
                else:
                    logger.info("adb server started", extra={**self._where(), "pid": proc.pid})
                return
            code = proc.poll()
            if code is not None or time.monotonic() > deadline:
                if code is None:
                    proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.to_thread(proc.wait, self.stop_timeout_s)
                self._proc = None
                what = (
                    f"exited with {code}"
                    if code is not None
                    else f"not answering after {self.start_timeout_s:g} s"
                )
                raise DeviceOffline(
                    f"`{' '.join(command)}` {what} (its output: {self.log_path or 'not kept'})",
                    command=" ".join(command),
                )
            await asyncio.sleep(_POLL_S)

    async def _reconnect(self, record: AdbRestart) -> None:
        """``adb connect`` every TCP phone the providers list, all at once; one that fails is logged."""
        serials: list[str] = []
        for provider in self.providers:
            try:
                serials += [spec.serial for spec in await provider.list()]
            # A provider reading its phones from the database (registered ones) may find it down;
            # the others' phones are reconnected all the same.
            except (PhoneFleetError, SQLAlchemyError, OSError) as exc:
                logger.warning(
                    "could not list a provider's phones", extra={"provider": provider.name, "error": str(exc)}
                )
        tcp = sorted({serial for serial in serials if ":" in serial})
        record.phones = len(tcp)
        results = await asyncio.gather(
            *(self.client.bring_online(serial, timeout=self.reconnect_timeout_s) for serial in tcp),
            return_exceptions=True,
        )
        for serial, result in zip(tcp, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, DeviceError):
                    raise result
                logger.warning(
                    "phone not back after the adb restart", extra={"serial": serial, "error": result.message}
                )
            else:
                record.online += 1
        record.reconnected_at = time.monotonic()

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.interval_s)

    def _where(self) -> dict[str, object]:
        return {"adb_host": self.client.host, "adb_port": self.client.port}


def adb_listeners(port: int) -> list[int]:
    """The pids of ``adb`` processes listening on TCP ``port`` (Linux ``/proc``; empty elsewhere or unseen)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return []
    targets = {f"socket:[{inode}]" for inode in inodes}
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Only an adb process: never a squatter of another kind on the adb port.
            if (entry / "comm").read_text().strip() != "adb":
                continue
            if any(os.readlink(fd) in targets for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to look into
            continue
    return pids


__all__ = ["DEAD", "WEDGED", "AdbRestart", "AdbServerSupervisor", "adb_listeners"]
