"""``phonefleet mcp``: the MCP server over stdio, for an agent that starts it as a subprocess (docs/mcp.md).

It finds the API and key as ``phonefleet task`` does (``--url``/``PHONEFLEET_URL``/``up``'s
``{data_dir}/api-url``; ``--api-key``/``PHONEFLEET_API_KEY``/``up``'s admin key) and calls the
REST API with them. stdout carries the protocol and nothing else: logs go to stderr.
Exit codes: 0 the client closed stdin; 2 no API key.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

_PROG = "phonefleet mcp"
logger = logging.getLogger(__name__)


def _cmd_mcp(args: argparse.Namespace) -> int:
    from orchestrator.cli.task import default_api_key, default_url

    url, source = (args.url, "--url") if args.url else default_url()
    key = args.api_key or default_api_key()
    if not key:
        print(f"{_PROG}: no API key: pass --api-key or set PHONEFLEET_API_KEY (or run phonefleet up, "
              "which keeps one in its data directory)", file=sys.stderr)  # fmt: skip
        return 2
    logger.info("MCP server on stdio", extra={"api_url": url, "from": source})
    asyncio.run(_serve(url, key, args.timeout))
    return 0


async def _serve(url: str, key: str, timeout_s: float) -> None:
    from orchestrator.async_client import AsyncPhoneFleetClient
    from orchestrator.mcp_server.tools import build_server

    async with AsyncPhoneFleetClient(url, key, timeout=timeout_s) as client:
        await build_server(lambda _ctx: client).run_stdio_async()


def register(sub: argparse._SubParsersAction) -> None:
    from orchestrator.cli.task import add_api_arguments

    parser = sub.add_parser("mcp", help="serve the fleet's phones as MCP tools over stdio")
    add_api_arguments(parser)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds each REST call may take (default 60)"
    )
    parser.set_defaults(func=_cmd_mcp)
