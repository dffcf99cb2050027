"""``route_path``: the path the dashboard and the submission fast path match, behind a path prefix or not."""

from __future__ import annotations

import pytest

from orchestrator.api.asgi import route_path


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("/api/v1/tasks", "", "/api/v1/tasks"),
        ("/fleet/api/v1/tasks", "/fleet", "/api/v1/tasks"),
        ("/fleet", "/fleet", "/"),
        ("/", "", "/"),
        ("/other/api/v1/tasks", "/fleet", "/other/api/v1/tasks"),  # not under the prefix: as sent
    ],
)
def test_route_path_removes_the_root_path(path: str, root: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root}) == expected
