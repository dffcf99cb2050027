"""Fixtures for the control plane: throwaway PostgreSQL databases and SQLite files, and the API
served for real.

The API is uvicorn running ``create_app(settings)`` in a thread, over real HTTP. Its databases are
the session's migrated PostgreSQL (and SQLite) databases, so each test makes its own tenants and
keys; the broker is the real Redis with a key prefix of the test's own, so the Celery queue each test
sees holds only its own messages.
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
from tests.databases import migrate_to_head, open_sessions, throwaway_postgres
from tests.databases import sqlite_url as _sqlite_url
from tests.orchestrator.factories import make_tenant


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of this test's own (URL for asyncpg), dropped afterwards."""
    with throwaway_postgres() as db:
        yield db.url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An empty SQLite file of this test's own (URL for aiosqlite)."""
    return _sqlite_url(tmp_path / "phonefleet.db")


@pytest.fixture(scope="session")
def migrated_pg_url() -> Iterator[str]:
    """One PostgreSQL database at the head revision, shared by the session: use unique names in it."""
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture(scope="session")
def migrated_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite file at the head revision, shared by the session: use unique names in it."""
    url = _sqlite_url(tmp_path_factory.mktemp("sqlite") / "phonefleet.db")
    migrate_to_head(url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated database on each backend in turn (the session's shared one)."""
    return request.getfixturevalue(f"migrated_{'pg' if request.param == 'postgresql' else 'sqlite'}_url")


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_db_url(request: pytest.FixtureRequest) -> str:
    """An empty database of this test's own on each backend in turn."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


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
