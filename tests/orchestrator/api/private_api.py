"""The API on a PostgreSQL database of its own, for tests that change rows every other test would see.

``start_api`` (tests/orchestrator/conftest.py) serves the session's shared database, where sessions
would lease other tests' phones and admins would drain or retire them. Module-scoped fixtures wrap
``private_api`` instead: a migrated throwaway database, Redis under a key prefix of its own (deleted
afterwards), the real ``create_app`` over HTTP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis

from orchestrator.api import create_app
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.asgi import serve_asgi
from tests.conftest import REDIS_URL
from tests.databases import migrate_to_head, throwaway_postgres
from tests.orchestrator.conftest import Api


@contextmanager
def private_api(data_dir: Path, **overrides: Any) -> Iterator[Api]:
    """Serve the API on a new migrated database; ``overrides`` go to ``Settings``."""
    prefix = f"pftest:{uuid.uuid4().hex[:12]}:"
    try:
        with throwaway_postgres("pfprivate") as db, ExitStack() as stack:
            migrate_to_head(db.url)
            settings = Settings(data_dir=data_dir, database_url=db.url, redis_url=REDIS_URL, **overrides)
            queue = TaskQueue.from_settings(settings, key_prefix=prefix)
            stack.callback(queue.close)
            url = stack.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
            yield Api(url=url, settings=settings, redis_prefix=prefix, _stack=stack)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
