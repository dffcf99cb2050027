"""Liveness and readiness probes against the real database and broker (and a closed broker port)."""

from __future__ import annotations

from tests.asgi import closed_port
from tests.orchestrator.api.conftest import StartApi
from tests.orchestrator.api.test_metrics import samples, value
from tests.worker.agent.model_servers import ModelServer, serve


def test_healthz_and_readyz_answer_ok(start_api: StartApi, migrated_pg_url: str) -> None:
    with serve(ModelServer()) as model:
        http = start_api(migrated_pg_url, model={"base_url": model.base_url}).client()
        assert http.get("/healthz").json() == {"status": "ok"}
        r = http.get("/readyz")
        assert r.status_code == 200 and r.json() == {
            "status": "ready",
            "checks": {"database": "ok", "broker": "ok", "model": "ok"},
        }
        assert value(samples(http.get("/metrics").text), "phonefleet_dependency_up", dependency="model") == 1


def test_readyz_and_metrics_say_the_model_server_is_unreachable_without_taking_the_api_out(
    start_api: StartApi, migrated_pg_url: str
) -> None:
    """Tasks are still taken while the model server is down (they wait), so /readyz stays 200,
    ``degraded``, with the reason; /metrics has the model's dependency gauge at 0."""
    http = start_api(migrated_pg_url, model={"base_url": f"http://127.0.0.1:{closed_port()}/v1"}).client()
    r = http.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "degraded", r.text
    checks = r.json()["checks"]
    assert checks["database"] == checks["broker"] == "ok" and "model server unreachable" in checks["model"], (
        checks
    )
    got = samples(http.get("/metrics").text)
    assert value(got, "phonefleet_dependency_up", dependency="model") == 0
    assert value(got, "phonefleet_dependency_up", dependency="broker") == 1


def test_readyz_is_503_and_says_the_broker_is_down(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    http = api.client()
    assert http.get("/healthz").status_code == 200
    r = http.get("/readyz")
    assert r.status_code == 503 and r.json()["status"] == "unavailable", r.text
    checks = r.json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] != "ok" and "broker" in checks["broker"]
    assert value(samples(http.get("/metrics").text), "phonefleet_dependency_up", dependency="broker") == 0


def test_readyz_is_503_when_the_database_is_down(start_api: StartApi) -> None:
    api = start_api(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing")
    r = api.client().get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["database"].startswith("database unavailable")
    assert r.json()["checks"]["broker"] == "ok"


def test_readyz_on_the_embedded_sqlite_broker(start_api: StartApi, migrated_sqlite_url: str) -> None:
    api = start_api(migrated_sqlite_url, redis_url=None)
    assert api.client().get("/readyz").status_code == 200
