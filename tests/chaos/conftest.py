"""The chaos suite's fleets: every part a real process (tests/system/conftest.py's ``fleet_starter``),
on a Redis server of the scenario's own, so stopping, restarting or flushing it never touches the
shared one; on a throwaway PostgreSQL database of the shared server, or on a database the scenario
brings (the PostgreSQL restart's private cluster); and on an adb server of its own (one it may kill).
None is skipped: without Debian's adb client a scenario fails.

``chaos(name, …)`` starts it all and returns a ``Scenario`` (tests/chaos/scenario.py). Everything is
stopped by pid afterwards, the fleet before the servers it uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos import report
from tests.chaos.scenario import PHONES, POOL_ARGS, QUICK_LIVENESS, SCRIPT, WORKERS, Scenario
from tests.conditions import reserved_ports
from tests.databases import migrate_to_head, throwaway_postgres
from tests.processes import AdbServer, adb_binary, start_adb_server
from tests.redis_servers import PrivateRedis, private_redis
from tests.system.conftest import fleet_starter


def pytest_sessionfinish(session: pytest.Session) -> None:
    if report.RECORDS:
        report.write(report.path(session.config._tmp_path_factory.getbasetemp()))  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    if report.RECORDS:
        terminalreporter.section("chaos: recovery per fault (seconds)")
        for line in report.table(report.RECORDS):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(JSON: {report.path(config._tmp_path_factory.getbasetemp())})")  # type: ignore[attr-defined]


@pytest.fixture
def chaos_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A ``redis-server`` of this scenario's own, on a port held for it across restarts."""
    with private_redis(tmp_path / "redis") as server:
        yield server


@contextlib.contextmanager
def private_adb(home: Path) -> Iterator[AdbServer]:
    """An adb server of this scenario's own (one it may kill). Afterwards, besides ours, any server a
    supervisor started again on its port is told to go (``adb kill-server``: never started anew)."""
    binary = adb_binary()
    if binary is None:
        pytest.fail("Debian's adb client is not installed (`apt-get install adb`; .ci/run does it)")
    server = start_adb_server(home, binary)
    try:
        yield server
    finally:
        server.run("kill-server", timeout=15)
        server.stop()


@pytest.fixture
def chaos(tmp_path: Path, chaos_redis: PrivateRedis) -> Iterator[Callable[..., Scenario]]:
    """``chaos(name, db_url=None, env=None)`` → a ``Scenario`` whose phones are idle, model server up
    and workers ready.

    ``db_url``: a migrated database to run on (default: a throwaway one on the shared server).
    ``env``: settings for every process, over ``QUICK_LIVENESS``.
    """
    with contextlib.ExitStack() as stack:

        def start(name: str, *, db_url: str | None = None, env: dict[str, str] | None = None) -> Scenario:
            if db_url is None:
                db_url = stack.enter_context(throwaway_postgres("pfchaos")).url
                migrate_to_head(db_url)
            adb = stack.enter_context(private_adb(tmp_path / "adbhome"))
            model_port = stack.enter_context(reserved_ports(1))  # held: the model comes back on it
            start_fleet = stack.enter_context(fleet_starter(tmp_path, db_url, chaos_redis.url, adb))
            fleet = start_fleet(PHONES, pool_args=POOL_ARGS, **{**QUICK_LIVENESS, **(env or {})})
            model = fleet.start_model(SCRIPT, port=model_port)
            workers = fleet.start_workers(model.base_url, WORKERS)
            return Scenario(name, fleet, chaos_redis, adb, model_port, model, workers)

        yield start
