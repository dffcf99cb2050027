"""A Redis server of a test's own, for tests that stop and restart it (never the shared one)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conditions import GiveUp, port_open, reserved_ports, wait_until
from tests.processes import stop_process


@dataclass
class PrivateRedis:
    """``redis-server`` on ``port`` without persistence: a restart comes back empty, as after a crash."""

    port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> None:
        """Start it on the same port and wait until it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir)]  # fmt: skip
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / "redis.log"
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            proc = self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

        def up() -> bool:
            if proc.poll() is not None:
                raise GiveUp(f"redis-server exited with {proc.returncode}: {log_path.read_text(errors='replace')}")
            return port_open("127.0.0.1", self.port)

        wait_until(up, timeout=timeout, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Stop it (by its pid) and wait until its port refuses connections."""
        if self.proc is not None:
            stop_process(self.proc)
        wait_until(lambda: not port_open("127.0.0.1", self.port), timeout=10, what="redis-server gone")


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    """A started ``PrivateRedis`` on a port from the OS, held for it across restarts; stopped at the end."""
    with reserved_ports(1) as port:
        server = PrivateRedis(port, workdir)
        server.start()
        try:
            yield server
        finally:
            server.stop()
