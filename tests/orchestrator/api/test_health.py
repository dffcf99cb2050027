"""Liveness and readiness probes against the real database and broker (and a closed broker port)."""

from __future__ import annotations

from tests.asgi import closed_port
from tests.orchestrator.api.conftest import Api, StartApi


def test_healthz_and_readyz_answer_ok(api: Api) -> None:
    http = api.client()
    assert http.get("/healthz").json() == {"status": "ok"}
    r = http.get("/readyz")
    assert r.status_code == 200 and r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok"},
    }


def test_readyz_is_503_and_says_the_broker_is_down(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    http = api.client()
    assert http.get("/healthz").status_code == 200
    r = http.get("/readyz")
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] != "ok" and "broker" in checks["broker"]


def test_readyz_is_503_when_the_database_is_down(start_api: StartApi) -> None:
    api = start_api(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing")
    r = api.client().get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"].startswith("database unavailable")
    assert r.json()["checks"]["broker"] == "ok"


def test_readyz_on_the_embedded_sqlite_broker(start_api: StartApi, migrated_sqlite_url: str) -> None:
    api = start_api(migrated_sqlite_url, redis_url=None)
    assert api.client().get("/readyz").status_code == 200
