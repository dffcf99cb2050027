"""Real processes for tests: started with Popen, waited on with a deadline, stopped by their own pid."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.cli.port_file import read_port_file
from tests.conditions import GiveUp, port_open, reserved_ports, wait_until

REPO = Path(__file__).resolve().parent.parent


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """terminate → wait → kill, on this pid only."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def child_pid(parent: int, *words: str) -> int:
    """The pid of ``parent``'s child process whose command line holds every one of ``words`` (in /proc);
    e.g. a sim provider's phone: ``child_pid(pool_pid, "device_pool.providers.sim_process", "--port", "20001")``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent pid is the 2nd field after the command name, which may hold spaces and ")".
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, IndexError, ValueError):  # it exited meanwhile
            continue
        if ppid == parent and all(word in argv for word in words):
            found.append(int(entry.name))
    if len(found) != 1:
        raise LookupError(f"{len(found)} children of {parent} run {' '.join(words)}: {found}")
    return found[0]


@dataclass
class SimPhones:
    """A running ``phonefleet sim`` process and the serials of its phones."""

    proc: subprocess.Popen
    ports: list[int]  # phone by phone, as the OS picked them
    data_root: Path
    host: str = "127.0.0.1"
    serials: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.ports)

    def port(self, i: int = 0) -> int:
        return self.ports[i]

    def serial(self, i: int = 0) -> str:
        return f"{self.host}:{self.ports[i]}"

    def stop(self) -> None:
        stop_process(self.proc)


def start_sim(
    data_root: Path,
    count: int = 1,
    width: int = 1080,
    height: int = 2400,
    density: int = 420,
    seed: int = 0,
    extra: list[str] | None = None,
    timeout: float = 30.0,
) -> SimPhones:
    # Ports from the OS (--base-port 0), reported in the ports file once every phone listens: no
    # other process can take a port between our choice and the phone's bind.
    ports_file = data_root / "sim-ports.json"
    cmd = [
        sys.executable, "-m", "orchestrator.cli", "sim",
        "--count", str(count), "--base-port", "0", "--ports-file", str(ports_file),
        "--width", str(width), "--height", str(height), "--density", str(density),
        "--seed", str(seed), "--data-root", str(data_root), *(extra or []),
    ]  # fmt: skip
    log_path = data_root / "sim.log"
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def written_ports() -> list[int] | None:
        if proc.poll() is not None:
            raise GiveUp(f"phonefleet sim exited with {proc.returncode}:\n{log_path.read_text()}")
        return json.loads(ports_file.read_text()) if ports_file.exists() else None

    try:
        ports = wait_until(written_ports, timeout=timeout, what="phonefleet sim writes its phones' ports")
    except BaseException:
        stop_process(proc)
        raise
    phones = SimPhones(proc=proc, ports=ports, data_root=data_root)
    phones.serials = [phones.serial(i) for i in range(count)]
    return phones


@dataclass
class AdbServer:
    """A private adb server (its own port and HOME) so tests never touch the user's server."""

    proc: subprocess.Popen
    port: int
    home: Path
    binary: str
    reservation: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env["ANDROID_ADB_SERVER_PORT"] = str(self.port)
        return env

    def run(self, *args: str, timeout: float = 30.0, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.binary, "-P", str(self.port), *args],
            env=self.env(), capture_output=True, timeout=timeout, check=check,
        )  # fmt: skip

    def connect(self, serial: str, timeout: float = 20.0) -> None:
        def connected() -> bool:
            self.run("connect", serial, timeout=15)
            out = self.run("devices", timeout=10).stdout.decode()
            return any(line.split("\t") == [serial, "device"] for line in out.splitlines())

        wait_until(connected, timeout=timeout, interval=0.2, what=f"adb lists {serial} as device")

    def stop(self) -> None:
        stop_process(self.proc)
        self.reservation.close()


def adb_binary() -> str | None:
    """Debian's adb (the real client the tests prove the phone against)."""
    return shutil.which("adb")


def start_adb_server(home: Path, binary: str) -> AdbServer:
    # adb's -P takes a number, not 0: the port stays reserved for it until the server stops.
    reservation = contextlib.ExitStack()
    port = reservation.enter_context(reserved_ports(1))
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), ANDROID_ADB_SERVER_PORT=str(port))
    # `server nodaemon` keeps the server in the foreground, so its pid is the one we stop.
    proc = subprocess.Popen(
        [binary, "-P", str(port), "server", "nodaemon"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = AdbServer(proc=proc, port=port, home=home, binary=binary, reservation=reservation)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=15, what="adb server listening")
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class ReferenceModel:
    """A running ``phonefleet reference-model`` process and its OpenAI base URL."""

    proc: subprocess.Popen
    port: int
    model_name: str
    log_path: Path
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        stop_process(self.proc)


def start_reference_model(
    log_dir: Path,
    script: Path | None = None,
    model_name: str = "autoglm-phone-9b",
    timeout: float = 30.0,
    port: int | None = None,
    family: str = "autoglm",
    role: str = "agent",
) -> ReferenceModel:
    """Start the reference model on ``port`` (one the caller holds, ``reserved_ports``) or else on a
    port the OS chooses, speaking the model family ``family``, and wait until ``/healthz`` answers."""
    import httpx

    log_dir.mkdir(parents=True, exist_ok=True)
    name = f"reference-model-{uuid.uuid4().hex[:8]}"
    log_path, port_file = log_dir / f"{name}.log", log_dir / f"{name}.port"
    cmd = [
        sys.executable, "-m", "orchestrator.cli", "reference-model",
        "--port", str(port or 0), "--port-file", str(port_file), "--model-name", model_name,
        *(["--script", str(script)] if script is not None else []),
        *(["--family", family] if family != "autoglm" else []),
        *(["--role", role] if role != "agent" else []),
    ]  # fmt: skip
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    def bound() -> int | None:
        if proc.poll() is not None:
            raise GiveUp(f"reference-model exited with {proc.returncode}:\n{log_path.read_text()}")
        return read_port_file(port_file)

    try:
        port = wait_until(bound, timeout=timeout, interval=0.05, what="reference model listening")
    except BaseException:
        stop_process(proc)
        raise
    server = ReferenceModel(proc=proc, port=port, model_name=model_name, log_path=log_path)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise GiveUp(f"reference-model exited with {proc.returncode}:\n{log_path.read_text()}")
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2.0).status_code == 200

    try:
        wait_until(healthy, timeout=timeout, interval=0.1, what=f"reference model /healthz on {port}")
    except BaseException:
        server.stop()
        raise
    return server
