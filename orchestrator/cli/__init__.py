"""The ``phonefleet`` command: one entry point, one module per subcommand.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets ``func``; the
function builds what it needs from its arguments and returns the exit code. Logging is set up
once, here, for every subcommand (``device_pool.logs``); the level and format are put in the
environment so the processes a command starts (``up``'s children, the sim provider's phones,
uvicorn's workers) log the same way.
"""

from __future__ import annotations

import argparse
import os
import sys

from device_pool.logs import FORMAT_ENV, FORMATS, LEVEL_ENV, configure_logging
from orchestrator.cli import (
    adb,
    admin,
    android_control,
    api,
    evals,
    mcp,
    migrate,
    openapi,
    pool,
    reference_model,
    replay,
    run,
    schedule,
    sim,
    task,
    up,
    worker,
)

SUBCOMMANDS = (
    sim, run, replay, android_control, reference_model, migrate, api, admin, pool, up, worker, task, schedule, evals,
    mcp, adb, openapi,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phonefleet", description="Cloud-phone fleet for phone-use AI agents."
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get(LEVEL_ENV) or "INFO",
        help=f"DEBUG, INFO, WARNING or ERROR (default: {LEVEL_ENV} or INFO); the format is {FORMAT_ENV} "
        f"({' or '.join(FORMATS)}, default text)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError as exc:  # PHONEFLEET_LOG_FORMAT is neither text nor json
        print(f"phonefleet: {FORMAT_ENV}: {exc}", file=sys.stderr)
        return 2
    # Inherited by every process this one starts.
    os.environ[LEVEL_ENV] = args.log_level.upper()
    os.environ.setdefault(FORMAT_ENV, "text")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
