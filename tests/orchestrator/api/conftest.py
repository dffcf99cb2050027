"""The API served for real (the fixtures ``api`` and ``start_api`` live in ``tests/orchestrator/conftest.py``,
so tests outside this folder use them too); here, the API on each database backend in turn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.databases import migrate_to_head
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.api.pools import RunningPool, running_pool
from tests.orchestrator.conftest import Api, Caller, StartApi, decode_celery_message

__all__ = ["Api", "Caller", "StartApi", "StartPool", "decode_celery_message"]

StartPool = Callable[..., RunningPool]


@pytest.fixture
def own_api(start_api: StartApi, pg_url: str) -> Api:
    """The API on a migrated PostgreSQL database of this test's own (a session leases *any* idle phone in it)."""
    migrate_to_head(pg_url)
    return start_api(pg_url)


@pytest.fixture
def start_pool(own_api: Api, make_sim_provider: MakeSimProvider, tmp_path: Path) -> Iterator[StartPool]:  # noqa: F811
    """Run a pool manager with ``count`` virtual phones (720x1600) on the API's database; personal
    phones' data under ``tmp_path/personal``. Keyword arguments go to the ``PoolManager``."""
    with ExitStack() as stack:

        def start(count: int, **manager_options: Any) -> RunningPool:
            provider = make_sim_provider(count=count, max_count=count, personal_root=tmp_path / "personal")
            return stack.enter_context(running_pool(own_api.db_url, provider, **manager_options))

        yield start


@pytest.fixture
def any_db_api(start_api: StartApi, db_url: str) -> Api:
    """The API on PostgreSQL, then on SQLite (both with Redis as the broker)."""
    return start_api(db_url)
