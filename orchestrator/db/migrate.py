"""Schema migrations through Alembic's API, on the same async engine the application uses.

The Alembic config is built in code (no alembic.ini, no reliance on the working directory); the
scripts live in the top-level ``migrations/`` folder, found beside the ``orchestrator`` package
(a source checkout or editable install) unless a folder is passed (``Settings.migrations_dir``).
Alembic's own INFO lines are silenced (``device_pool.logs.QUIET_LOGGERS``: it names its dialect on
every start); one ``database migrated`` line says what changed, and nothing is said when nothing did.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from orchestrator.db.engine import make_engine

__all__ = ["alembic_config", "current", "downgrade", "head_revision", "migrations_dir", "upgrade"]

logger = logging.getLogger(__name__)

# orchestrator/db/migrate.py → the folder holding orchestrator/ (the repository root in a checkout).
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def migrations_dir(path: Path | str | None = None) -> Path:
    """The Alembic script folder: ``path`` if given, else ``migrations/`` next to the package.

    Raises FileNotFoundError if it holds no ``env.py`` (e.g. a wheel install: set
    ``PHONEFLEET_MIGRATIONS_DIR`` to a copy of the folder).
    """
    folder = Path(path).expanduser().resolve() if path is not None else _PACKAGE_ROOT / "migrations"
    if not (folder / "env.py").is_file():
        raise FileNotFoundError(
            f"no Alembic migrations in {folder} (missing env.py); set PHONEFLEET_MIGRATIONS_DIR"
        )
    return folder


def alembic_config(url: str | None = None, script_location: Path | str | None = None) -> Config:
    """An Alembic ``Config`` for the scripts in ``script_location``; ``url`` is handed to env.py."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(script_location)))
    if url is not None:
        # Passed as an attribute, not a main option: ConfigParser would read '%' in a password.
        config.attributes["url"] = url
    return config


def head_revision(script_location: Path | str | None = None) -> str:
    """The newest revision id in the scripts (raises if the history has several heads)."""
    head = ScriptDirectory.from_config(alembic_config(script_location=script_location)).get_current_head()
    if head is None:
        raise RuntimeError("the migration history is empty")
    return head


async def upgrade(url: str, revision: str = "head", *, script_location: Path | str | None = None) -> None:
    """Migrate the database at ``url`` up to ``revision``, all steps in one transaction."""
    await _run(url, "upgrade", revision, script_location)


async def downgrade(url: str, revision: str, *, script_location: Path | str | None = None) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    await _run(url, "downgrade", revision, script_location)


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None when it was never migrated."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            heads = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads())
    finally:
        await engine.dispose()
    if len(heads) > 1:
        raise RuntimeError(f"the database is at several heads: {', '.join(heads)}")
    return heads[0] if heads else None


async def _run(url: str, name: str, revision: str, script_location: Path | str | None) -> None:
    config = alembic_config(url, script_location)
    # Foreign keys off on SQLite while tables are rebuilt; env.py runs foreign_key_check before commit.
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_command, config, name, revision)
    finally:
        await engine.dispose()


def _run_command(connection: Connection, config: Config, name: str, revision: str) -> None:
    # env.py sees the connection and migrates on it instead of opening its own.
    config.attributes["connection"] = connection
    before = MigrationContext.configure(connection).get_current_heads()
    getattr(command, name)(config, revision)
    after = MigrationContext.configure(connection).get_current_heads()
    if after != before:
        logger.info(
            "database migrated",
            extra={"from_revision": ",".join(before) or "base", "to_revision": ",".join(after) or "base"},
        )
