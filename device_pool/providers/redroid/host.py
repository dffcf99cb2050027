"""Can this host run redroid? The kernel features Android needs, checked before the first container.

redroid runs Android's userspace on the host's kernel, so the kernel must offer what Android expects:
binder IPC (binderfs, or ``binder_linux`` devices), shared memory (memfd, or the old ashmem), 4 KiB
pages. A host without them starts containers that exit at once, with the reason only in ``dmesg``;
checking first turns that into one message that says what to load.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from device_pool.providers.errors import ProviderError
from device_pool.providers.redroid.config import RedroidConfig, parse_mount

logger = logging.getLogger(__name__)

MIN_KERNEL = (4, 14)  # redroid's oldest supported kernel; binderfs needs 5.0
BINDER_DEVICES = ("/dev/binder", "/dev/hwbinder", "/dev/vndbinder")


class HostUnsupported(ProviderError):
    """This host's kernel lacks what redroid needs (binder, memfd/ashmem, 4 KiB pages); the message says what."""

    code = "host_unsupported"


@dataclass(frozen=True)
class HostFacts:
    """What the check reads from the host; ``read()`` takes them from /proc and /dev."""

    system: str
    kernel: str
    filesystems: str  # /proc/filesystems
    misc: str  # /proc/misc (ashmem registers there)
    devices: frozenset[str]  # the binder, ashmem and dri device paths that exist
    page_size: int

    @classmethod
    def read(cls) -> HostFacts:
        candidates = (*BINDER_DEVICES, "/dev/ashmem", "/dev/dri", "/dev/binderfs")
        return cls(
            system=platform.system(),
            kernel=platform.release(),
            filesystems=_read("/proc/filesystems"),
            misc=_read("/proc/misc"),
            devices=frozenset(p for p in candidates if os.path.exists(p)),
            page_size=os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096,
        )


def host_problems(facts: HostFacts, config: RedroidConfig) -> list[str]:
    """Each missing requirement as a sentence with its remedy; empty when redroid can run here."""
    if facts.system != "Linux":
        return [f"redroid needs a Linux kernel; this is {facts.system} (use a Linux VM or host)"]
    problems = []
    version = kernel_version(facts.kernel)
    if version < MIN_KERNEL:
        problems.append(
            f"kernel {facts.kernel} is older than {'.'.join(map(str, MIN_KERNEL))}: "
            "redroid needs 4.14 or newer, 5.0 or newer for binderfs"
        )
    mounted = {parse_mount(m)[1] for m in (*config.mounts, *config.devices)}
    binderfs = re.search(r"\bbinder\b", facts.filesystems) is not None
    devices = all(d in facts.devices or d in mounted for d in BINDER_DEVICES)
    if not (binderfs or devices):
        problems.append(
            "binder: the kernel has no binderfs (no 'binder' in /proc/filesystems) and there are no "
            f"{', '.join(BINDER_DEVICES)} devices; load it with "
            "`modprobe binder_linux devices=binder,hwbinder,vndbinder` (Ubuntu: "
            "apt install linux-modules-extra-$(uname -r)) or boot a kernel with CONFIG_ANDROID_BINDER_IPC=y "
            "and CONFIG_ANDROID_BINDERFS=y (docs/deploy.md, 'Host requirements')"
        )
    ashmem = "ashmem" in facts.misc or "/dev/ashmem" in facts.devices
    if not config.use_memfd and not ashmem:
        problems.append(
            "ashmem: use_memfd is off and the kernel has no ashmem (removed in 5.18); turn use_memfd on "
            "or `modprobe ashmem_linux`"
        )
    if facts.page_size != 4096:
        problems.append(f"page size is {facts.page_size} bytes; Android images need 4 KiB pages")
    if config.gpu_mode == "host" and not any(
        parse_mount(d)[1].startswith("/dev/dri") for d in config.devices
    ):
        problems.append("gpu_mode=host needs the GPU passed in: add /dev/dri:/dev/dri to devices")
    return problems


def require_host(facts: HostFacts, config: RedroidConfig, *, provider: str) -> None:
    """Raise HostUnsupported listing every problem ``host_problems`` finds."""
    problems = host_problems(facts, config)
    if problems:
        raise HostUnsupported(
            "this host cannot run redroid: " + "; ".join(problems),
            provider=provider,
            context={"kernel": facts.kernel, "problems": problems},
        )


def check_engine_host(config: RedroidConfig, info: dict, *, provider: str) -> None:
    """The check for the engine's host: all of it for a local engine, its kernel for a remote one.

    ``info`` is the engine's ``docker info``. A local engine (a unix socket) runs on this kernel, so
    /proc and /dev here are its host's; of a remote engine only the kernel release is visible.
    """
    if config.docker_url.startswith("unix://"):
        require_host(HostFacts.read(), config, provider=provider)
        return
    kernel = str(info.get("KernelVersion", ""))
    if kernel_version(kernel) < MIN_KERNEL:
        raise HostUnsupported(
            f"the engine at {config.docker_url} runs kernel {kernel or 'unknown'}; redroid needs 4.14 or newer",
            provider=provider,
        )
    logger.warning("remote docker engine: binder is not checked from here", extra={"kernel": kernel})


def kernel_version(release: str) -> tuple[int, int]:
    """``6.1.0-18-amd64`` → (6, 1); (0, 0) when it does not parse."""
    match = re.match(r"^(\d+)\.(\d+)", release)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


__all__ = [
    "HostFacts",
    "HostUnsupported",
    "check_engine_host",
    "host_problems",
    "kernel_version",
    "require_host",
]
