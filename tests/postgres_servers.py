"""A PostgreSQL cluster of a test's own, for tests that stop, crash and restart it (never the shared one).

``private_postgres(workdir)`` runs ``initdb`` and ``pg_ctl`` from Debian's server package
(``/usr/lib/postgresql/<version>/bin``) as the ``postgres`` OS user, since both refuse to run as
root. The cluster is disposable: trust authentication, ``fsync`` off, listening on 127.0.0.1 only,
on a port held by ``tests.conditions.reserved_ports`` for the whole block so a restart gets it back.
Its data directory and Unix socket live in a temp dir of its own under ``/tmp``: the postgres user
cannot enter root's 0700 pytest folders, and a socket path must stay under 108 bytes. The server's
log is copied to ``workdir/postgres.log`` at the end.

Its API, kept small for the test suites that restart databases (the outage tests, ``tests/chaos``):

- ``PrivatePostgres.url`` / ``.dsn`` — the ``postgres`` database (SQLAlchemy asyncpg URL, libpq URL);
  ``.url_of(name)`` for another database on it, ``create_database(name)`` to make one;
- ``.stop(mode)`` — ``"fast"`` (a clean shutdown: sessions are ended) or ``"immediate"`` (a crash:
  no checkpoint, recovery on the next start); returns once the port refuses connections
  (``stop("smart", wait=False)``: a shutdown that waits on its clients and refuses new ones);
- ``.start()`` — the same data directory on the same port; returns once it accepts connections;
- ``.running()`` and ``.log()`` for assertions and failure messages.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tests.conditions import port_open, reserved_ports, wait_until

__all__ = ["PrivatePostgres", "StopMode", "pg_bin_dir", "private_postgres"]

StopMode = Literal["smart", "fast", "immediate"]

_OS_USER = "postgres"  # the server refuses to run as root; Debian's package makes this user
_DB_USER = "postgres"
_HOST = "127.0.0.1"

# A throwaway cluster: durability buys nothing, and a crash (`-m immediate`) still recovers from WAL.
_CONFIG = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{sockets}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
logging_collector = off
log_min_messages = warning
"""


def pg_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` and ``pg_ctl``; None if none."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    found = [d for d in found if (d / "initdb").exists()]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


@dataclass
class PrivatePostgres:
    """A cluster in ``root`` (data/, its log, its socket) on ``port``; see the module docstring."""

    port: int
    root: Path  # owned by the postgres OS user
    bin_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        """The ``postgres`` database as ``PHONEFLEET_DATABASE_URL`` takes it (SQLAlchemy, asyncpg)."""
        return self.url_of("postgres")

    @property
    def dsn(self) -> str:
        """The ``postgres`` database as a libpq URL (asyncpg.connect, psql)."""
        return f"postgresql://{_DB_USER}@{_HOST}:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        """The SQLAlchemy (asyncpg) URL of ``database`` on this cluster."""
        return f"postgresql+asyncpg://{_DB_USER}@{_HOST}:{self.port}/{database}"

    # --- lifecycle ---------------------------------------------------------------------------------

    def init(self) -> None:
        """``initdb`` a new cluster in ``data_dir`` and write its configuration."""
        self.root.mkdir(parents=True, exist_ok=True)
        sockets = self.root / "sockets"
        sockets.mkdir(exist_ok=True)
        _chown_tree(self.root)
        self._pg("initdb", "-D", str(self.data_dir), "-U", _DB_USER, "-A", "trust", "-E", "UTF8",
                 "--locale=C", "--no-sync", "--no-instructions", timeout=120)  # fmt: skip
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(_CONFIG.format(host=_HOST, port=self.port, sockets=sockets))

    def start(self, timeout: float = 60.0) -> None:
        """Start the server on its data directory and port; returns once it accepts connections
        (after crash recovery, when the last stop was ``immediate``)."""
        assert not self.running(), "already running"
        self._pg("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
                 "-t", str(int(timeout)), timeout=timeout + 10)  # fmt: skip
        wait_until(
            lambda: port_open(_HOST, self.port), timeout=timeout, what=f"PostgreSQL on port {self.port}"
        )

    def stop(self, mode: StopMode = "fast", *, wait: bool = True, timeout: float = 60.0) -> None:
        """Stop the server; with ``wait``, return once its port refuses connections.

        ``fast`` ends every session and shuts down cleanly (a planned restart); ``immediate`` is a
        crash (the next start replays the WAL); ``smart`` waits for the clients to leave, refusing
        new connections meanwhile ("the database system is shutting down"): with ``wait=False``
        it returns at once and the server stays in that state while a client holds on.
        """
        if not wait:
            self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-W")
            return
        self._pg("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(int(timeout)),
                 timeout=timeout + 10)  # fmt: skip
        wait_until(
            lambda: not port_open(_HOST, self.port), timeout=10, what=f"PostgreSQL on {self.port} gone"
        )

    def running(self) -> bool:
        """Whether the postmaster runs (``pg_ctl status``)."""
        return self._pg("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def create_database(self, name: str) -> str:
        """Create database ``name``; returns its SQLAlchemy URL."""
        self._pg("createdb", "-h", _HOST, "-p", str(self.port), "-U", _DB_USER, name)
        return self.url_of(name)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """End the server whatever state it is in: ``pg_ctl stop -m immediate``, else SIGKILL to
        the postmaster's pid (from ``postmaster.pid``; its backends exit when it is gone)."""
        pid = _postmaster_pid(self.data_dir)
        if pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError, RuntimeError):
            self._pg(
                "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "20", timeout=30
            )
            return
        if _is_postmaster_of(pid, self.data_dir):  # not a stale pid file's number, reused since
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    # --- running the server's programs ----------------------------------------------------------------

    def _pg(
        self, program: str, *args: str, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", _OS_USER, "--", *argv]
        result = subprocess.run(
            argv, cwd=self.root, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}\n"
                f"--- server log ---\n{self.log()[-4000:]}"
            )
        return result


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for parent, dirs, files in os.walk(path):
        for name in [parent, *(os.path.join(parent, n) for n in dirs + files)]:
            shutil.chown(name, _OS_USER, _OS_USER)


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.decode(errors="replace") == str(data_dir) for arg in argv)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first = (data_dir / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return int(first) if first.strip().isdigit() else None


@contextlib.contextmanager
def private_postgres(workdir: Path) -> Iterator[PrivatePostgres]:
    """A started ``PrivatePostgres`` on a port held for it across restarts; at the end, stopped
    (however the block ended), its log copied to ``workdir/postgres.log`` and its files removed.

    Raises ``RuntimeError`` when no PostgreSQL server programs are installed.
    """
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/pg_ctl: install Debian's postgresql package")
    root = Path(tempfile.mkdtemp(prefix="pfpg-"))
    try:
        with reserved_ports(1) as port:
            server = PrivatePostgres(port, root, bin_dir)
            try:
                server.init()
                server.start()
                yield server
            finally:
                server.kill()
                workdir.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(OSError):
                    shutil.copyfile(server.log_path, workdir / "postgres.log")
    finally:
        shutil.rmtree(root, ignore_errors=True)
