"""Pool fixtures: a freshly migrated database of each test's own (PostgreSQL and SQLite), and SimProviders.

A database per test rather than the session's shared one: ``acquire`` takes *any* idle device, so
tests sharing a database would lease each other's devices.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import migrate_to_head, sqlite_url, throwaway_postgres

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import adb_device, make_sim_provider  # noqa: F401


@pytest.fixture(params=["postgresql", "sqlite"])
def pool_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own on each backend in turn."""
    if request.param == "postgresql":
        with throwaway_postgres("pfpool") as db:
            migrate_to_head(db.url)
            yield db.url
    else:
        url = sqlite_url(tmp_path / "pool.db")
        migrate_to_head(url)
        yield url
