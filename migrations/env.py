"""Alembic environment: migrations run on PhoneFleet's async engine, on PostgreSQL or SQLite.

``orchestrator.db.migrate`` hands over an open connection (``config.attributes["connection"]``).
Run from the ``alembic`` command instead, the URL comes from ``-x url=…``, then ``sqlalchemy.url``
in alembic.ini, then the PhoneFleet settings (``PHONEFLEET_DATABASE_URL``).
"""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from orchestrator.db.engine import make_engine
from orchestrator.db.models import Base
from orchestrator.db.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    # UTCDateTime only converts values; the column is a plain DateTime(timezone=True), and the
    # revision must not import application code that may change after it is written.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by rebuilding them; batch mode does that
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on ``connection``; on SQLite, refuse to commit broken foreign keys."""
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            # Migrations run with foreign keys off (tables are rebuilt); check what they left.
            broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if broken:
                raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:10]}")


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from orchestrator.settings import load_settings  # the alembic command is an entry point

    return load_settings().database_url


async def _run_async_migrations() -> None:
    engine = make_engine(_url(), sqlite_foreign_keys=False)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(do_run_migrations)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(_run_async_migrations())


if config.config_file_name is not None and config.attributes.get("connection") is None:
    # Only the alembic command configures logging here; PhoneFleet's entry points do their own.
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
