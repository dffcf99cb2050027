"""The API served for real: uvicorn running ``create_app(settings)`` in a thread, over real HTTP.

Databases are the session's migrated PostgreSQL (and SQLite) databases, so each test makes its own
tenants and keys; the broker is the real Redis with a key prefix of the test's own, so the Celery
queue each test sees holds only its own messages.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from orchestrator.api import create_app
from orchestrator.db import UserRole, utcnow
from orchestrator.queue import TASKS_QUEUE, TaskQueue
from orchestrator.services.auth import issue_api_key
from orchestrator.settings import Settings
from tests.aio import run
from tests.asgi import serve_asgi
from tests.conftest import REDIS_URL
from tests.databases import open_sessions
from tests.orchestrator.factories import make_tenant


@dataclass
class Caller:
    """An API key of a tenant, and an HTTP client that sends it."""

    key: str
    key_id: uuid.UUID
    tenant_id: uuid.UUID
    http: httpx.Client


@dataclass
class Api:
    """A running API: its URL, settings and the Redis list its Celery queue lives in."""

    url: str
    settings: Settings
    redis_prefix: str
    _stack: ExitStack = field(repr=False)

    @property
    def db_url(self) -> str:
        return self.settings.database_url

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self._stack.enter_context(httpx.Client(base_url=self.url, headers=headers, timeout=15))

    def caller(self, *, role: UserRole = UserRole.MEMBER, tenant_id: uuid.UUID | None = None,
               revoked: bool = False) -> Caller:  # fmt: skip
        """A new key (and user; and tenant unless ``tenant_id``) in the API's database."""

        async def make() -> tuple[str, uuid.UUID, uuid.UUID]:
            async with open_sessions(self.db_url) as sessions, sessions() as session, session.begin():
                tid = tenant_id or (await make_tenant(session)).id
                issued = await issue_api_key(
                    session, tenant_id=tid, user_name=f"user-{uuid.uuid4().hex[:8]}", role=role
                )
                if revoked:
                    issued.row.revoked_at = utcnow()
                return issued.key, issued.row.id, tid

        key, key_id, tid = run(make())
        return Caller(key=key, key_id=key_id, tenant_id=tid, http=self.client(key))

    def queued_messages(self) -> list[dict[str, Any]]:
        """The Celery messages waiting in the tasks queue, decoded: ``{"task", "args", "kwargs"}``."""
        r = redis.Redis.from_url(REDIS_URL)
        try:
            raw = r.lrange(f"{self.redis_prefix}{TASKS_QUEUE}", 0, -1)
        finally:
            r.close()
        return [decode_celery_message(item) for item in raw]


def decode_celery_message(raw: bytes) -> dict[str, Any]:
    """A kombu envelope (Celery protocol 2, JSON, base64 body) → task name, args, kwargs."""
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)
    return {"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs, "envelope": envelope}


StartApi = Callable[..., Api]


@pytest.fixture
def start_api(tmp_path: Path, redis_prefix: str) -> Iterator[StartApi]:
    """Start an API on ``db_url``: Redis (with this test's key prefix) unless ``redis_url`` says otherwise."""
    with ExitStack() as stack:

        def start(db_url: str, *, redis_url: str | None = REDIS_URL, **overrides: Any) -> Api:
            settings = Settings(
                data_dir=tmp_path / "data", database_url=db_url, redis_url=redis_url, **overrides
            )
            queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
            stack.callback(queue.close)
            url = stack.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
            return Api(url=url, settings=settings, redis_prefix=redis_prefix, _stack=stack)

        yield start


@pytest.fixture
def api(start_api: StartApi, migrated_pg_url: str) -> Api:
    """The API on the session's PostgreSQL database and Redis."""
    return start_api(migrated_pg_url)


@pytest.fixture
def any_db_api(start_api: StartApi, db_url: str) -> Api:
    """The API on PostgreSQL, then on SQLite (both with Redis as the broker)."""
    return start_api(db_url)
