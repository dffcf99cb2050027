"""One virtual phone in a process of its own: what ``SimProvider`` starts for each phone.

    python -m device_pool.providers.sim_process --port 6520 --data-root DIR [--seed 0 --width 1080
        --height 2400 --density 420 --host 127.0.0.1 --reset --parent-pid PID --data-dir PATH]

The phone keeps its data in ``DIR/phone-PORT`` (the layout of ``phonefleet sim``), or in ``PATH``
with ``--data-dir`` (a personal phone's data, kept apart from the phone's own). SIGTERM or SIGINT
stops it; so does the death of ``--parent-pid``. Exit status 0 after a stop, ``EXIT_CANNOT_LISTEN``
when the port is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from device_pool.logs import configure_logging

if TYPE_CHECKING:
    from device_pool.sim.fleet import SimFleet

logger = logging.getLogger(__name__)

EXIT_CANNOT_LISTEN = 3
_PARENT_POLL_S = 1.0


async def _serve(fleet: SimFleet, parent_pid: int | None) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await fleet.start()
    logger.info("phone online", extra={"serial": fleet.serials[0]})
    try:
        while not done.is_set():
            # A provider that died without close() must not leave phones behind: once our parent
            # is gone we are re-parented, and getppid() changes.
            if parent_pid is not None and os.getppid() != parent_pid:
                logger.warning("parent process gone; stopping", extra={"parent_pid": parent_pid})
                return
            try:
                await asyncio.wait_for(done.wait(), _PARENT_POLL_S)
            except TimeoutError:
                pass
    finally:
        await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run one phone until a signal; the exit status says why it stopped."""
    parser = argparse.ArgumentParser(prog="python -m device_pool.providers.sim_process")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=2400)
    parser.add_argument("--density", type=int, default=420)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reset", action="store_true", help="start from factory state")
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="run on this data instead of DIR/phone-PORT")
    args = parser.parse_args(argv)
    # Imported here: the provider imports this module for its exit codes and must not load the sim.
    from device_pool.sim.fleet import SimFleet
    from device_pool.sim.phone import PhoneConfig

    # The level and format the pool's own process was started with (inherited environment).
    configure_logging()

    config = PhoneConfig(width=args.width, height=args.height, density=args.density, seed=args.seed)
    fleet = SimFleet(
        1, args.port, args.data_root, config, host=args.host, reset=args.reset, data_dir=args.data_dir
    )
    try:
        asyncio.run(_serve(fleet, args.parent_pid))
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return EXIT_CANNOT_LISTEN
    return 0


if __name__ == "__main__":
    sys.exit(main())
