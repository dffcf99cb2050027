"""Database fixtures for the control plane: throwaway PostgreSQL databases and SQLite files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import migrate_to_head, throwaway_postgres
from tests.databases import sqlite_url as _sqlite_url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of this test's own (URL for asyncpg), dropped afterwards."""
    with throwaway_postgres() as db:
        yield db.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite file of this test's own (URL for aiosqlite)."""
    return _sqlite_url(tmp_path / "phonefleet.db")


@pytest.fixture(scope="session")
def migrated_pg_url() -> Iterator[str]:
    """One PostgreSQL database at the head revision, shared by the session: use unique names in it."""
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture(scope="session")
def migrated_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite file at the head revision, shared by the session: use unique names in it."""
    url = _sqlite_url(tmp_path_factory.mktemp("sqlite") / "phonefleet.db")
    migrate_to_head(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database on each backend in turn (the session's shared one)."""
    return request.getfixturevalue(f"migrated_{'pg' if request.param == 'postgresql' else 'sqlite'}_url")


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """An empty database of this test's own on each backend in turn."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")
