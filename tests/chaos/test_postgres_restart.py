"""PostgreSQL restarted under a working fleet: a private cluster (``initdb``/``pg_ctl`` in a temporary
directory, as the ``postgres`` user: tests/postgres_servers.py), so the shared server is never
touched. The same workload and invariants as tests/chaos/test_faults.py; worker liveness keeps its
defaults (lost after 15 s), as in production: a short outage must not look like lost workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.scenario import Scenario, hold
from tests.databases import migrate_to_head
from tests.postgres_servers import private_postgres

PG_OUTAGE_S = 5.0
DEFAULT_LIVENESS = {"PHONEFLEET_POOL__WORKER_LOST_S": "15", "PHONEFLEET_POOL__WORKER_HEARTBEAT_S": "3"}


pytestmark = pytest.mark.chaos  # `pytest -m chaos` runs the suite alone, `-m "not chaos"` leaves it out


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Any]:
    """A migrated private cluster; requested before ``chaos``, so it outlives the fleet."""
    with private_postgres(tmp_path / "pg") as server:
        migrate_to_head(server.url)
        yield server


@pytest.mark.timeout(300)
def test_postgres_restart(postgres, chaos) -> None:
    s: Scenario = chaos("postgres_restart", db_url=postgres.url, env=DEFAULT_LIVENESS)
    s.submit()
    s.in_flight()
    with s.injecting(f"PostgreSQL stopped {PG_OUTAGE_S:g} s, started again"):
        postgres.stop()
        hold(PG_OUTAGE_S)
        postgres.start()
    s.settle(within_s=180)
