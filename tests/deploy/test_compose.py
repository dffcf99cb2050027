"""deploy/docker-compose.yml and deploy/Dockerfile: `docker compose config` renders them, and every
service's PHONEFLEET_* environment builds the real Settings (so a misspelt variable fails here, not
on an operator's host)."""

from __future__ import annotations

import json
import re

import pytest

from device_pool.providers.redroid import RedroidConfig
from tests.deploy.manifests import (
    COMPOSE_FILE,
    DEPLOY,
    MODEL_CARD_FLAGS,
    SECRETS,
    compose_command,
    compose_document,
    run_compose_config,
    settings_from_env,
)
from tests.processes import REPO

APP_SERVICES = ("migrate", "api", "worker", "pool", "reference-model")


def test_compose_structure_profiles_and_model_flags() -> None:
    doc = compose_document(SECRETS)
    services = doc["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "pool",
        "vllm",
        "reference-model",
    }
    assert (services["vllm"]["profiles"], services["reference-model"]["profiles"]) == (["gpu"], ["cpu"])
    # vLLM >= 0.12, serving AutoGLM-Phone-9B with its model card's flags, under the name we ask for.
    major, minor = map(int, re.match(r".*:v(\d+)\.(\d+)", services["vllm"]["image"]).groups())
    assert (major, minor) >= (0, 12)
    command = services["vllm"]["command"]
    assert command[0] == "zai-org/AutoGLM-Phone-9B" and set(MODEL_CARD_FLAGS) <= set(command)
    assert "--served-model-name=autoglm-phone-9b" in command
    assert "reference-model" in services["reference-model"]["command"]
    for model in ("vllm", "reference-model"):  # either profile answers at http://model:8000/v1
        assert services[model]["networks"]["default"]["aliases"] == ["model"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "/readyz" in services["api"]["healthcheck"]["test"][-1]
    # The pool makes phones through the Docker socket, on the network the app services share.
    pool = services["pool"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in pool["volumes"]
    assert pool["environment"]["PHONEFLEET_POOL__REDROID__NETWORK_MODE"] == doc["networks"]["phones"]["name"]
    for name in ("api", "worker", "pool"):
        assert "phones" in services[name]["networks"]


def test_compose_refuses_to_start_without_secrets() -> None:
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        compose_document({})


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_app_service_environment_builds_the_settings(service: str) -> None:
    env = compose_document(SECRETS)["services"][service]["environment"]
    settings = settings_from_env(env)
    assert settings.env == "prod"
    assert settings.database_url.startswith("postgresql+asyncpg://phonefleet:pg-7f3a9c@postgres:5432/")
    assert settings.model.base_url == "http://model:8000/v1"
    assert env["PHONEFLEET_LOG_FORMAT"] == "json"  # production logs: one JSON object per line
    if service == "pool":
        pool = settings.pool
        config = RedroidConfig(**pool.redroid.model_dump(), min_count=pool.count, base_port=pool.base_port)
        assert (pool.provider, config.pool_id, config.named_network) == ("redroid", "compose", True)
        assert (config.golden_volume, config.adb_keyboard_apk) == (None, None)  # "" means none


def test_dockerfile_installs_the_packages_and_runs_phonefleet() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1[1-9]", dockerfile, re.M)
    assert 'ENTRYPOINT ["phonefleet"]' in dockerfile
    assert re.search(r"apt-get install .*\badb\b", dockerfile)
    allowed = {
        line[1:]
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for needed in ("orchestrator", "worker", "device_pool", "migrations", "pyproject.toml"):
        assert needed in allowed and (REPO / needed).exists()
    assert COMPOSE_FILE.parent == DEPLOY


def test_docker_compose_config_renders_both_profiles() -> None:
    if compose_command() is None:
        pytest.skip("no Compose v2 CLI here (`docker compose`); .ci/run installs the plugin")
    done = run_compose_config(SECRETS, "gpu", "cpu")
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    assert set(config["services"]) >= {
        "postgres",
        "redis",
        "api",
        "worker",
        "pool",
        "vllm",
        "reference-model",
    }
    assert config["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"][0][
        "capabilities"
    ] == ["gpu"]
    default = json.loads(run_compose_config(SECRETS).stdout)
    assert "vllm" not in default["services"] and "reference-model" not in default["services"]
    missing = run_compose_config({k: v for k, v in SECRETS.items() if k != "LOGIN_SECRET"})
    assert missing.returncode != 0 and "LOGIN_SECRET" in missing.stderr


def test_api_worker_and_pool_share_the_data_and_personal_phones_folders() -> None:
    """Screenshots (workers write, the API serves, the pool's reaper removes) and personal phones'
    data (the pool keeps and removes it, the API exports and imports it): one volume, one path."""
    services = compose_document({**SECRETS, "STORAGE_ENCRYPTION_KEY": "k-7f3a9c", "RETENTION_DAYS": "30"})[
        "services"
    ]
    seen = set()
    for name in ("api", "worker", "pool"):
        settings = settings_from_env(services[name]["environment"])
        assert "appdata:/var/lib/phonefleet" in services[name]["volumes"]
        assert settings.personal_phones.data_dir.is_relative_to("/var/lib/phonefleet")
        assert settings.storage.encryption_key.get_secret_value() == "k-7f3a9c"
        assert settings.storage.retention_days == 30
        seen.add((settings.data_dir, settings.personal_phones.data_dir))
    assert len(seen) == 1
    unset = settings_from_env(compose_document(SECRETS)["services"]["pool"]["environment"])
    assert (unset.storage.encryption_key, unset.storage.retention_days) == (None, None)  # "" means off
