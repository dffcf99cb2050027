"""``phonefleet sim``: virtual Android phones that speak the real adb protocol.

``--base-port 0`` lets the OS pick every phone's port, and ``--ports-file`` tells a caller which it
picked: a JSON list, phone by phone, written once all of them listen. Tests use the pair instead of
guessing free ports, which another process could take between the guess and the bind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import tempfile
from pathlib import Path

from orchestrator.cli.port_file import write_whole
from orchestrator.cli.refusal import refuse
from orchestrator.cli.signals import serve_until_signal

logger = logging.getLogger(__name__)


def _cmd_sim(args: argparse.Namespace) -> int:
    from device_pool.sim.fleet import SimFleet
    from device_pool.sim.phone import PhoneConfig

    temp_root = None
    if args.data_root is None:
        temp_root = tempfile.mkdtemp(prefix="phonefleet-sim-")
        data_root = Path(temp_root)
    else:
        data_root = Path(args.data_root)
    config = PhoneConfig(
        width=args.width,
        height=args.height,
        density=args.density,
        seed=args.seed,
        show_frame_counter=args.frame_counter,
    )
    ports_file = None if args.ports_file is None else Path(args.ports_file)
    if ports_file is not None:
        # A file left by an earlier run would name ports nobody listens on any more.
        ports_file.unlink(missing_ok=True)
    try:
        fleet = SimFleet(
            args.count, args.base_port, data_root, config, host=args.host,
            reset=args.reset, require_auth=args.auth,
        )  # fmt: skip

        async def start() -> None:
            await fleet.start()
            if ports_file is not None:
                write_whole(ports_file, json.dumps(fleet.ports))
            for i, serial in enumerate(fleet.serials):
                logger.info("phone %d listening: adb connect %s", i, serial, extra={"serial": serial})
            logger.info("virtual phones running; Ctrl-C stops", extra={"data_root": str(data_root)})

        asyncio.run(serve_until_signal(start, fleet.stop))
    except OSError as exc:
        refuse("sim", f"cannot listen: {exc}")
        return 1
    finally:
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("sim", help="run virtual Android phones that speak the real adb protocol")
    sim.add_argument("--count", type=int, default=1, help="number of phones (default 1)")
    sim.add_argument(
        "--base-port",
        type=int,
        default=6520,
        help="phone i listens on base-port+i (default 6520); 0: every phone on a port the OS picks",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--width", type=int, default=1080)
    sim.add_argument("--height", type=int, default=2400)
    sim.add_argument("--density", type=int, default=420)
    sim.add_argument("--seed", type=int, default=0, help="phone i is built from seed+i")
    sim.add_argument(
        "--data-root", default=None, help="keep phone state here (default: a temp dir, removed at exit)"
    )
    sim.add_argument("--reset", action="store_true", help="factory-reset every phone at start")
    sim.add_argument("--auth", action="store_true", help="ask hosts for AUTH (any key is accepted)")
    sim.add_argument("--frame-counter", action="store_true", help="draw the frame counter on screen")
    sim.add_argument(
        "--ports-file",
        default=None,
        help="once every phone listens, write their ports here (a JSON list, replaced atomically)",
    )
    sim.set_defaults(func=_cmd_sim)
