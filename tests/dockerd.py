"""A private Docker engine for tests: Debian's ``dockerd`` on its own socket and data root, stopped by pid.

It never touches a Docker the machine may already run: its socket, data root, exec root and pid file
all live in a fresh directory under /tmp (short, because a unix socket path is limited to 108 bytes),
it makes no bridge and no iptables rules (``--bridge=none --iptables=false --ip-masq=false``), so
containers use host networking. No registry is reachable here, so images are made locally with the
engine's import (what ``docker import`` calls): ``build_standin_image`` makes a redroid stand-in from a
rootfs of mount points, whose ``/init`` is the virtual phone run by this machine's Python, bind-mounted
read-only together with the project.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conditions import GiveUp, wait_until
from tests.processes import REPO

STANDIN = "phonefleet/redroid-standin:13.0.0-test"  # the stand-in image's reference (build_standin_image)


class DockerdUnavailable(Exception):
    """dockerd cannot run here (not installed, not root, or it exited); the message says why."""


@dataclass
class Dockerd:
    proc: subprocess.Popen
    root: Path

    @property
    def url(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM to this dockerd's pid (it stops its containers and its containerd), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        # dockerd leaves its network namespace mount (exec-root/netns/default), and a killed one its
        # overlays: unmount what is still mounted under our root, deepest first, then remove it.
        for target in sorted(_mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]


def start_dockerd(timeout: float = 60.0) -> Dockerd:
    """Start a private dockerd and wait until it answers; DockerdUnavailable (with the reason) if it cannot."""
    binary = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.path.exists("/usr/sbin/dockerd") else None)
    if binary is None:
        raise DockerdUnavailable("dockerd is not installed (`apt-get install docker.io`; .ci/run does it)")
    if os.geteuid() != 0:
        raise DockerdUnavailable("dockerd needs root, and these tests run as an ordinary user")
    root = Path(tempfile.mkdtemp(prefix="pfdk-", dir="/tmp"))
    command = [
        binary, "--bridge=none", "--iptables=false", "--ip-masq=false",
        "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "docker.pid"), "-H", f"unix://{root / 'docker.sock'}",
    ]  # fmt: skip
    with open(root / "dockerd.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    daemon = Dockerd(proc=proc, root=root)

    def answers() -> bool:
        if proc.poll() is not None:
            raise GiveUp(f"dockerd exited with {proc.returncode}")
        import docker

        client = docker.DockerClient(base_url=daemon.url, timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    try:
        wait_until(answers, timeout=timeout, interval=0.2, what="dockerd answers on its socket")
    except (GiveUp, TimeoutError) as exc:
        reason = f"dockerd did not start: {exc}\n{daemon.log()}"
        daemon.stop()
        raise DockerdUnavailable(reason) from exc
    return daemon


def standin_mounts() -> tuple[str, ...]:
    """Read-only binds that let the stand-in run this machine's Python and the project's code."""
    paths = ["/usr", sys.base_prefix, sys.prefix, str(REPO)]
    chosen: list[str] = []
    for path in sorted({os.path.realpath(p) for p in paths}, key=len):
        if not any(path == c or path.startswith(c + "/") for c in chosen):
            chosen.append(path)
    return tuple(f"{p}:{p}:ro" for p in chosen)


def standin_settings(url: str, pool_id: str) -> dict[str, Any]:
    """The RedroidConfig fields that point at the stand-in on the dockerd at ``url`` (shared by the
    provider tests, `phonefleet pool`'s and the wake bench). Two differ from production, each because
    this sandbox cannot do it: ``check_host=False`` (no binder) and ``privileged=False`` (no
    CAP_SYS_RESOURCE); host networking because dockerd runs with ``--bridge=none``."""
    repository, tag = STANDIN.rsplit(":", 1)
    return {
        "docker_url": url, "pool_id": pool_id, "image": repository, "tag": tag, "pull": "never",
        "network_mode": "host", "privileged": False, "check_host": False, "mounts": list(standin_mounts()),
        "width": 720, "height": 1600, "density": 320, "memory_mb": 1024, "cpus": 1.0, "boot_timeout_s": 60,
    }  # fmt: skip


def build_standin_image(url: str, ref: str) -> None:
    """Import a redroid stand-in image: mount points only, ``/init`` = our virtual phone (redroid.standin)."""
    import docker

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in (
            "usr",
            "tmp",
            "data",
            "data-base",
            "data-diff",
            "proc",
            "sys",
            "dev",
            "etc",
            "root",
            "work",
        ):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        for link, target in (
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/sbin"),
        ):
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    python = os.path.join(sys.prefix, "bin", "python")  # the venv's, so its site-packages load
    entrypoint = f'ENTRYPOINT ["{python}", "-m", "device_pool.providers.redroid.standin"]'
    repository, tag = ref.rsplit(":", 1)
    client = docker.DockerClient(base_url=url, timeout=60)
    try:
        client.api.import_image_from_data(
            buffer.getvalue(), repository=repository, tag=tag, changes=[entrypoint, f"WORKDIR {REPO}"]
        )
    finally:
        client.close()
