"""Worker fixtures shared by the agent and reference-model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import ReferenceModel, start_reference_model


@pytest.fixture(scope="session")
def reference_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceModel]:
    """The rule-based server (OCR), one process shared by every test."""
    server = start_reference_model(tmp_path_factory.mktemp("refmodel"))
    try:
        yield server
    finally:
        server.stop()
