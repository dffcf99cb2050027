"""A stand-in for redroid's ``/init``: the virtual phone, configured the way redroid is, for tests without binder.

    python -m device_pool.providers.redroid.standin androidboot.redroid_width=720 \
        androidboot.redroid_height=1600 androidboot.redroid_dpi=320 [androidboot.use_redroid_overlayfs=1 …]

It is the entrypoint of an image the tests build with ``docker import`` (tests/dockerd.py), so that
``RedroidProvider`` drives a real Docker engine through its real code path: the same boot arguments,
volumes, labels and ADB checks as with redroid. Like redroid it reads ``key=value`` boot arguments
(unknown ones are ignored, as redroid's init ignores them) and keeps the phone's state under
``/data``; with ``androidboot.use_redroid_overlayfs=1`` a fresh ``/data-diff`` starts as a copy of the
shared ``/data-base``, as redroid's overlay shows it. adbd listens on ``$ADB_PORT`` (default 5555, as
redroid) on every address; SIGTERM (``docker stop``) stops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from device_pool.logs import configure_logging

logger = logging.getLogger(__name__)

_DEFAULTS = {"width": 720, "height": 1280, "dpi": 320}  # redroid's own defaults


def boot_properties(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments as a dict; anything else is ignored, as by redroid's init."""
    return dict(arg.split("=", 1) for arg in argv if "=" in arg)


def data_dir(props: dict[str, str], root: Path = Path("/")) -> Path:
    """Where the phone keeps its state: /data, or /data-diff seeded from /data-base in overlay mode."""
    if props.get("androidboot.use_redroid_overlayfs") != "1":
        return root / "data" / "phone"
    diff, base = root / "data-diff" / "phone", root / "data-base" / "phone"
    if not diff.exists() and base.exists():
        shutil.copytree(base, diff, symlinks=True)
    return diff


async def _serve(props: dict[str, str], port: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from device_pool.sim.adbd import AdbDaemon
    from device_pool.sim.phone import PhoneConfig, VirtualPhone

    def number(key: str) -> int:
        return int(props.get(f"androidboot.redroid_{key}", _DEFAULTS[key]))

    config = PhoneConfig(
        width=number("width"), height=number("height"), density=number("dpi"), serial=f"PFRR{port}"
    )
    phone = VirtualPhone(data_dir(props), config)
    executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sim-shell")
    daemon = AdbDaemon(phone, "0.0.0.0", port, executor=executor)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await daemon.start()
    logger.info("stand-in phone booted on port %d (%dx%d)", port, config.width, config.height)
    try:
        await stop.wait()
    finally:
        await daemon.stop()
        executor.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    props = boot_properties(sys.argv[1:] if argv is None else argv)
    port = int(os.environ.get("ADB_PORT", "5555"))
    try:
        asyncio.run(_serve(props, port))
    except OSError as exc:
        logger.error("cannot listen on port %d: %s", port, exc)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
