"""The API served for real (the fixtures ``api`` and ``start_api`` live in ``tests/orchestrator/conftest.py``,
so tests outside this folder use them too); here, the API on each database backend in turn."""

from __future__ import annotations

import pytest

from tests.orchestrator.conftest import Api, Caller, StartApi, decode_celery_message

__all__ = ["Api", "Caller", "StartApi", "decode_celery_message"]


@pytest.fixture
def any_db_api(start_api: StartApi, db_url: str) -> Api:
    """The API on PostgreSQL, then on SQLite (both with Redis as the broker)."""
    return start_api(db_url)
