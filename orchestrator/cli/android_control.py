"""``phonefleet android-control TRAJECTORY --out DIR``: a trajectory as an AndroidControl episode folder.

Writes ``DIR/episode.json`` (the dataset's fields, file names where it holds bytes) with
``DIR/screenshots/<n>.png`` (docs/trajectories.md, "AndroidControl episodes").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.errors import InvalidTrajectory
from orchestrator.services.android_control import to_episode, write_episode
from orchestrator.services.trajectories import load_trajectory


def _cmd(args: argparse.Namespace) -> int:
    try:
        with load_trajectory(args.trajectory) as trajectory:
            episode = to_episode(trajectory, args.episode_id)
    except InvalidTrajectory as exc:
        print(f"phonefleet android-control: {exc}", file=sys.stderr)
        return 2
    path = write_episode(episode, Path(args.out))
    print(
        f"{path}: {len(episode.fields['actions'])} actions, {len(episode.fields['screenshots'])} screenshots"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("android-control", help="convert a trajectory to an AndroidControl episode folder")
    p.add_argument(
        "trajectory", help="the API's trajectory zip (or it unzipped), or a `phonefleet run` folder"
    )
    p.add_argument("--out", required=True, help="the episode's folder (made if missing)")
    p.add_argument("--episode-id", type=int, default=None, help="default: from the task's id")
    p.set_defaults(func=_cmd)
