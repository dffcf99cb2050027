"""The ``phonefleet`` command: one entry point, one module per subcommand.

Each subcommand module has ``register(subparsers)``, which adds its parser and sets ``func``; the
function builds what it needs from its arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys

from orchestrator.cli import admin, api, migrate, pool, reference_model, run, sim, task, up, worker

SUBCOMMANDS = (sim, run, reference_model, migrate, api, admin, pool, up, worker, task)


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phonefleet", description="Cloud-phone fleet for phone-use AI agents."
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
