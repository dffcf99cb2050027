"""Migrations: the revisions build exactly the models' schema, on PostgreSQL and SQLite, both ways."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from orchestrator.db import Base, make_engine, migrate
from tests.aio import run
from tests.databases import sqlite_url as make_sqlite_url
from tests.processes import REPO

MODEL_TABLES = set(Base.metadata.tables)


async def _schema_diff_and_tables(url: str) -> tuple[list, set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn: Connection) -> tuple[list, set[str]]:
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, Base.metadata), set(inspect(sync_conn).get_table_names())

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


def test_upgrade_matches_models_then_downgrade_and_upgrade_again(empty_db_url: str) -> None:
    url = empty_db_url
    head = migrate.head_revision()
    assert run(migrate.current(url)) is None

    run(migrate.upgrade(url))
    assert run(migrate.current(url)) == head
    diff, tables = run(_schema_diff_and_tables(url))
    assert diff == [], f"models and migrations disagree: {diff}"
    assert tables == MODEL_TABLES | {"alembic_version"}

    run(migrate.downgrade(url, "base"))
    assert run(migrate.current(url)) is None
    _, tables = run(_schema_diff_and_tables(url))
    assert tables <= {"alembic_version"}

    run(migrate.upgrade(url, head))
    diff, tables = run(_schema_diff_and_tables(url))
    assert diff == [] and tables == MODEL_TABLES | {"alembic_version"}


def test_migrations_folder_is_found_without_the_working_directory(tmp_path: Path) -> None:
    assert migrate.migrations_dir() == REPO / "migrations"
    assert migrate.migrations_dir(REPO / "migrations") == REPO / "migrations"
    with pytest.raises(FileNotFoundError, match="PHONEFLEET_MIGRATIONS_DIR"):
        migrate.migrations_dir(tmp_path)


def _phonefleet(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "migrate", *args],
        cwd=cwd, env=child_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_migrates_postgresql(pg_url: str, tmp_path: Path) -> None:
    head = migrate.head_revision()
    # Run away from the repository: the command must not rely on the working directory.
    done = _phonefleet(cwd=tmp_path, env={"PHONEFLEET_DATABASE_URL": pg_url})
    assert done.returncode == 0, done.stderr
    assert f"database migrated from_revision=base to_revision={head}" in done.stderr  # the one line it logs

    done = _phonefleet("--database-url", pg_url, "current", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{head} (head)"

    done = _phonefleet("--database-url", pg_url, "downgrade", "base", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _phonefleet("--database-url", pg_url, "current", cwd=tmp_path).stdout.strip() == "base"


def test_cli_default_database_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet" / "there"
    done = _phonefleet(cwd=tmp_path, env={"PHONEFLEET_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert (data_dir / "phonefleet.db").is_file()
    assert run(migrate.current(make_sqlite_url(data_dir / "phonefleet.db"))) == migrate.head_revision()


def test_cli_errors_are_one_line_not_a_traceback(tmp_path: Path, sqlite_url: str) -> None:
    done = _phonefleet("--database-url", sqlite_url, "downgrade", "no-such-rev", cwd=tmp_path)
    assert done.returncode == 1
    assert "phonefleet migrate: CommandError" in done.stderr and "Traceback" not in done.stderr

    done = _phonefleet(cwd=tmp_path, env={"PHONEFLEET_MIGRATIONS_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "no Alembic migrations" in done.stderr

    done = _phonefleet("--database-url", "postgresql+asyncpg://postgres@127.0.0.1:1/none", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_alembic_command_sees_no_pending_changes(sqlite_url: str) -> None:
    """The developer path (alembic.ini at the root): `alembic check` autogenerates against the DB."""
    alembic = Path(sys.executable).parent / "alembic"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")}
    base = [str(alembic), "-x", f"url={sqlite_url}"]
    for command in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [*base, *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
