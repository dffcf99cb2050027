"""What a redroid phone is made of: ``RedroidConfig``, its container labels and its boot arguments.

redroid (Android in a container) is configured at boot by ``androidboot.*`` arguments after the image
name (``docker run redroid/redroid:13.0.0_64only-latest androidboot.redroid_width=1080 …``); the Android
version is the image tag. Nothing here talks to Docker: ``engine`` does that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from device_pool.providers.base import DeviceProfile

# Every container and volume we make carries these; reaping and close() select by them, never by name.
LABEL_MANAGED = "io.phonefleet.managed"
LABEL_POOL = "io.phonefleet.pool"
LABEL_PORT = "io.phonefleet.port"
LABEL_ROLE = "io.phonefleet.role"  # "phone" (container), "data" (a phone's volume), "golden", "personal"
# On a personal phone's volume: the image that made its /data. Android does not run on a /data an
# older (or other) image wrote, so a volume is attached only by the image that made it.
LABEL_IMAGE = "io.phonefleet.image"
LABEL_PERSONAL = "io.phonefleet.personal-phone"  # the personal phone a volume belongs to

ADB_PORT_IN_CONTAINER = 5555  # redroid's adbd; on a bridge network it is published on the phone's host port
ADB_PORT_ENV = "ADB_PORT"  # host networking: the port the phone must listen on (the stand-in honours it)
_MOUNT = re.compile(r"^[^:]+:/[^:]*(:(ro|rw))?$")


class RedroidConfig(BaseModel):
    """One host's redroid phones: image, boot arguments, limits, ports and deadlines.

    Each phone has a port in ``[base_port, base_port + max_count)`` and is reached by ``network_mode``:

    - ``"bridge"`` (one host): redroid's adbd port 5555 is published on that host port, bound to
      ``publish_host``; the serial is ``host:port``.
    - a user-defined Docker network's name (compose): the container joins it and nothing is
      published; the serial is ``<container name>:5555``, resolved by Docker's DNS for every
      container on that network (pool, workers, API).
    - ``"host"`` (tests, a single phone): the phone listens on its port itself (``ADB_PORT`` in its
      environment); only the test stand-in honours that, real redroid always listens on 5555.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    docker_url: str = "unix:///var/run/docker.sock"
    pool_id: str = Field("default", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # our containers' pool label
    image: str = "redroid/redroid"
    tag: str = "13.0.0_64only-latest"
    pull: Literal["missing", "never"] = "missing"
    min_count: int = Field(0, ge=0)  # phones start() brings up: the floor on this host
    max_count: int = Field(8, ge=1)  # create() raises ProviderCapacity beyond this many
    base_port: int = Field(6520, ge=1, le=65535)
    host: str = "127.0.0.1"  # where adb reaches the phones; serials are host:port
    publish_host: str = "127.0.0.1"  # bridge mode: the address published ports bind to (never a public one)
    network_mode: str = Field("bridge", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # bridge, host or a network
    width: int = Field(1080, gt=0)
    height: int = Field(2400, gt=0)
    density: int = Field(420, gt=0)
    fps: int = Field(30, ge=1, le=120)
    gpu_mode: Literal["auto", "host", "guest"] = "guest"  # guest: software rendering, no GPU needed
    use_memfd: bool = True  # kernels >= 5.18 have no ashmem
    memory_mb: int = Field(4096, ge=256)
    cpus: float = Field(2.0, gt=0)
    privileged: bool = True  # redroid mounts binderfs and sets up its own cgroups
    # A volume whose /data has finished first boot (and ADB Keyboard): shared read-only through redroid's
    # overlayfs (/data-base), each phone writing to a fresh /data-diff. None: a fresh empty /data per phone.
    golden_volume: str | None = None
    adb_keyboard_apk: Path | None = None  # installed when the phone lacks com.android.adbkeyboard
    extra_boot_args: tuple[str, ...] = ()  # e.g. androidboot.redroid_net_ndns=1, ro.product.model=…
    mounts: tuple[str, ...] = ()  # extra binds "SRC:DST[:ro]", e.g. /dev/binder1:/dev/binder on old kernels
    devices: tuple[str, ...] = ()  # e.g. /dev/dri:/dev/dri for gpu_mode=host
    environment: dict[str, str] = Field(default_factory=dict)
    check_host: bool = True  # binder/binderfs, kernel, page size at start(); off only for the test stand-in
    labels: dict[str, str] = Field(default_factory=dict)  # copied into every DeviceSpec
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037
    boot_timeout_s: float = Field(180.0, gt=0)  # container start → sys.boot_completed and the launcher
    stop_timeout_s: float = Field(10.0, gt=0)
    command_timeout_s: float = Field(30.0, gt=0)  # pm install of an APK is slow on a cold phone
    health_timeout_s: float = Field(5.0, gt=0)

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, mounts: tuple[str, ...]) -> tuple[str, ...]:
        bad = [m for m in mounts if not _MOUNT.match(m)]
        if bad:
            raise ValueError(f"mounts must be SRC:/DST or SRC:/DST:ro|rw, not {', '.join(bad)}")
        return mounts

    @model_validator(mode="after")
    def _fits(self) -> RedroidConfig:
        if self.min_count > self.max_count:
            raise ValueError(f"min_count {self.min_count} exceeds max_count {self.max_count}")
        if self.base_port + self.max_count - 1 > 65535:
            raise ValueError("base_port + max_count runs past port 65535")
        if self.network_mode == "none":
            raise ValueError("network_mode 'none' leaves adb no way to reach the phones")
        return self

    @property
    def named_network(self) -> bool:
        """Whether phones join a user-defined network (reached by container name) rather than bridge or host."""
        return self.network_mode not in ("bridge", "host", "default", "none")

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.tag}"

    @property
    def android(self) -> str:
        """The Android major version the tag names (``13.0.0_64only-latest`` → ``13``); "" if it names none."""
        match = re.match(r"^(\d+)(?:\.(\d+))?", self.tag)
        if match is None:
            return ""
        major, minor = match.groups()
        return major if minor in (None, "0") else f"{major}.{minor}"

    def profile(self) -> DeviceProfile:
        return DeviceProfile(width=self.width, height=self.height, density=self.density, android=self.android)

    def labels_for(self, role: str, port: int | None = None) -> dict[str, str]:
        labels = {LABEL_MANAGED: "true", LABEL_POOL: self.pool_id, LABEL_ROLE: role}
        if port is not None:
            labels[LABEL_PORT] = str(port)
        return labels

    def boot_args(self, profile: DeviceProfile) -> list[str]:
        """The arguments after the image name: redroid's init reads them as boot properties."""
        args = [
            f"androidboot.redroid_width={profile.width}",
            f"androidboot.redroid_height={profile.height}",
            f"androidboot.redroid_dpi={profile.density}",
            f"androidboot.redroid_fps={self.fps}",
            f"androidboot.redroid_gpu_mode={self.gpu_mode}",
        ]
        if self.use_memfd:
            args.append("androidboot.use_memfd=true")
        if self.golden_volume is not None:
            args.append("androidboot.use_redroid_overlayfs=1")
        return [*args, *self.extra_boot_args]


def parse_mount(spec: str) -> tuple[str, str, str]:
    """``SRC:DST[:ro|rw]`` → (src, dst, mode)."""
    parts = spec.split(":")
    return parts[0], parts[1], parts[2] if len(parts) > 2 else "rw"


__all__ = [
    "ADB_PORT_ENV",
    "ADB_PORT_IN_CONTAINER",
    "LABEL_IMAGE",
    "LABEL_MANAGED",
    "LABEL_PERSONAL",
    "LABEL_POOL",
    "LABEL_PORT",
    "LABEL_ROLE",
    "RedroidConfig",
    "parse_mount",
]
