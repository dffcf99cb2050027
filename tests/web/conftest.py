"""The dashboard (web/) in real headless Chromium, against the control plane as separate processes.

``web_fleet`` is ``tests/system``'s ``start_fleet`` — ``phonefleet api`` over HTTP, ``phonefleet
pool`` with virtual phones, per test a ``phonefleet worker`` and the scripted reference model, on a
PostgreSQL database and a Redis index of the fleet's own — with the API's live view set for one
machine: ICE host candidates pinned to 127.0.0.1 (aioice offers no loopback address otherwise), the
pool's adb server, video at most 360 px wide (cheap to encode and decode on a shared machine) and
quick lease checks (a takeover's control reaches the browser within 0.2 s).

``api`` (the API in process, no phones) comes from ``tests/orchestrator``. ``artifacts`` is where a test saves its page screenshots: ``$PHONEFLEET_TEST_ARTIFACTS/<test>`` when
set, else ``<tmp_path>/artifacts``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.orchestrator.conftest import api, migrated_pg_url, start_api  # noqa: F401  (fixtures)
from tests.processes import AdbServer
from tests.system.conftest import Fleet, fleet_pg_url, redis_db, start_fleet  # noqa: F401  (fixtures)

WebFleet = Callable[..., Fleet]


@pytest.fixture
def web_fleet(start_fleet: Any, adb_server: AdbServer) -> WebFleet:  # noqa: F811
    """``web_fleet(phones, **env)`` → a ``Fleet`` whose API serves live views to a local browser."""

    def start(phones: int, **env: str) -> Fleet:
        return start_fleet(
            phones,
            PHONEFLEET_WEBRTC__HOST_ADDRESSES=json.dumps(["127.0.0.1"]),
            PHONEFLEET_WEBRTC__ADB_PORT=str(adb_server.port),
            PHONEFLEET_WEBRTC__MAX_WIDTH="360",
            PHONEFLEET_WEBRTC__LEASE_CHECK_S="0.2",
            PHONEFLEET_WEBRTC__LINGER_S="0.5",
            **env,
        )

    return start


@pytest.fixture
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = os.environ.get("PHONEFLEET_TEST_ARTIFACTS")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = Path(root) / name if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
