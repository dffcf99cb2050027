"""``phonefleet openapi``: print the API's OpenAPI document (JSON), as ``/openapi.json`` serves it.

What clients are generated from without a running API: the TypeScript client in ``web/sdk-ts``
keeps a copy (``openapi.json``), which a test compares with this command's output so that the copy
never falls behind the routes (docs/sdk-typescript.md). The document does not depend on the
settings, so the app is built with throwaway ones and no database is opened.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def openapi_schema() -> dict[str, Any]:
    """The app's OpenAPI document, built with throwaway settings: what both generated clients (the
    TypeScript types here, the Python SDK's models in ``orchestrator/sdk/generate.py``) read."""
    from orchestrator.api import create_app
    from orchestrator.settings import Settings

    with tempfile.TemporaryDirectory(prefix="pf-openapi-") as data_dir:
        app = create_app(Settings(data_dir=Path(data_dir), database_url="sqlite+aiosqlite:///:memory:"))
        return app.openapi()


def document() -> str:
    """The app's OpenAPI document as indented JSON text, ending in a newline (stable: keys in the
    app's order, non-ASCII as is), the form ``web/sdk-ts/openapi.json`` is checked in."""
    return json.dumps(openapi_schema(), indent=2, ensure_ascii=False) + "\n"


def _cmd_openapi(args: argparse.Namespace) -> int:
    text = document()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("openapi", help="print the API's OpenAPI document (what clients are generated from)")
    parser.add_argument(
        "-o", "--output", default="-", help="write it to this file instead of standard output (e.g. "
        "web/sdk-ts/openapi.json, the TypeScript client's copy)",
    )  # fmt: skip
    parser.set_defaults(func=_cmd_openapi)
