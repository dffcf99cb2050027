"""``phonefleet migrate``: bring the database schema to a revision (default: the newest)."""

from __future__ import annotations

import argparse
import asyncio

from orchestrator.cli.refusal import refuse


def _cmd_migrate(args: argparse.Namespace) -> int:
    from alembic.util import CommandError
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from orchestrator.db import migrate
    from orchestrator.settings import load_settings

    overrides = {"database_url": args.database_url} if args.database_url else {}
    try:
        settings = load_settings(**overrides)
        script_location = migrate.migrations_dir(settings.migrations_dir)
    except (ValidationError, FileNotFoundError) as exc:
        refuse("migrate", f"{exc}")
        return 2
    url = settings.database_url
    try:
        if args.action == "current":
            revision = asyncio.run(migrate.current(url))
            head = migrate.head_revision(script_location)
            print(f"{revision} (head)" if revision == head else (revision or "base"))
        elif args.action == "downgrade":
            asyncio.run(migrate.downgrade(url, args.revision, script_location=script_location))
        else:
            asyncio.run(migrate.upgrade(url, args.revision, script_location=script_location))
    except (CommandError, SQLAlchemyError, OSError) as exc:
        # Bad revision, unreachable or refusing database: one line, not a traceback.
        refuse("migrate", f"{type(exc).__name__}: {exc}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("migrate", help="migrate the database schema (default: upgrade to head)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="database to migrate (default: PHONEFLEET_DATABASE_URL or SQLite)",
    )
    actions = parser.add_subparsers(dest="action")
    up = actions.add_parser("upgrade", help="migrate up to REV (default head)")
    up.add_argument("revision", nargs="?", default="head")
    down = actions.add_parser("downgrade", help="migrate down to REV ('base' drops every table)")
    down.add_argument("revision")
    actions.add_parser("current", help="print the revision the database is at ('base': never migrated)")
    parser.set_defaults(func=_cmd_migrate, action="upgrade", revision="head")
