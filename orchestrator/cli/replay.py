"""``phonefleet replay TRAJECTORY --device SERIAL``: a trajectory's actions again, on a phone, without a model.

TRAJECTORY is the API's zip (``phonefleet task trajectory ID``), that zip unzipped, or the folder
``phonefleet run`` wrote. The phone should be where the recording started (a fresh phone: the
pool's reset, or a new ``phonefleet sim``). Each action is carried out by the agent's executor;
after each, the screen is compared with the one recorded (worker/agent/replay.py says how), and the
first step where they part is reported. Exit 0: reproduced; 1: diverged (or an action could not be
replayed); 2: not a trajectory, or the phone is unreachable. As ``phonefleet run`` does, the adb
server answering on ``--adb-port`` is used, or one is started for this command and stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from orchestrator.errors import InvalidTrajectory
from orchestrator.services.trajectories import Trajectory, load_trajectory, screens


def _plan(trajectory: Trajectory):
    """The steps to replay with the screen expected after each, and the screen the recording began on."""
    from worker.agent.replay import ReplayStep

    seen = screens(trajectory)
    plan = [
        ReplayStep(step.index, step.action, trajectory.image_named(shots.after))
        for step, shots in zip(trajectory.steps, seen, strict=True)
        if step.action is not None and step.result == "ok"
    ]
    first = trajectory.steps[0] if trajectory.steps else None
    start = trajectory.image_named(seen[0].before) if seen else None
    return plan, start, (first.index if first is not None else 0)


async def _replay(args: argparse.Namespace, trajectory: Trajectory) -> dict:
    from device_pool.driver import AdbServerClient
    from device_pool.pool.adb_supervisor import AdbServerSupervisor
    from worker.agent.phone_agent import connect_phone
    from worker.agent.replay import replay

    plan, start, first_index = _plan(trajectory)
    adb = AdbServerSupervisor(AdbServerClient(args.adb_host, args.adb_port))
    try:
        await adb.start()
        device = await connect_phone(args.device, adb_host=args.adb_host, adb_port=args.adb_port)
        report = await replay(
            device, plan, start=None if args.no_start_check else start, first_index=first_index,
            threshold=args.threshold,
        )  # fmt: skip
    finally:
        await adb.close()
    return {**report.to_json(), "threshold": args.threshold, "trajectory": str(args.trajectory)}


def _cmd_replay(args: argparse.Namespace) -> int:
    from device_pool.errors import DeviceError
    from worker.agent.replay import DEFAULT_THRESHOLD  # the agent loads only when replaying

    if args.threshold is None:
        args.threshold = DEFAULT_THRESHOLD

    try:
        trajectory = load_trajectory(args.trajectory)
    except InvalidTrajectory as exc:
        print(f"phonefleet replay: {exc}", file=sys.stderr)
        return 2
    try:
        with trajectory:
            outcome = asyncio.run(_replay(args, trajectory))
    except InvalidTrajectory as exc:
        print(f"phonefleet replay: {exc}", file=sys.stderr)
        return 2
    except DeviceError as exc:
        print(f"phonefleet replay: the phone: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(outcome), flush=True)
    else:
        for index, phase, distance in outcome["distances"]:
            print(f"step {index:>3} {phase:<6}  distance {distance:.3f}", flush=True)
        if outcome["reproduced"]:
            print(
                f"reproduced: {outcome['steps_run']} actions, {outcome['checked']} screens matched",
                flush=True,
            )
        elif outcome["stopped"]:
            print(f"stopped: {outcome['stopped']}", flush=True)
        else:
            where = "before it" if outcome["phase"] == "before" else "after it"
            print(
                f"diverged at step {outcome['diverged_at']} (the screen {where}): distance "
                f"{outcome['distance']:.3f} > {args.threshold}",
                flush=True,
            )
    return 0 if outcome["reproduced"] else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="re-run a trajectory's actions on a phone, without a model")
    p.add_argument(
        "trajectory", help="the API's trajectory zip (or it unzipped), or a `phonefleet run` folder"
    )
    p.add_argument("--device", required=True, help="ADB serial or address of the phone, e.g. 127.0.0.1:6520")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="largest screen distance (0..1) still the same screen (default 0.1: worker/agent/replay.py)",
    )
    p.add_argument(
        "--no-start-check", action="store_true", help="do not compare the first screen before acting"
    )
    p.add_argument("--adb-host", default="127.0.0.1")
    p.add_argument("--adb-port", type=int, default=5037)
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    p.set_defaults(func=_cmd_replay)
