"""deploy/helm/phonefleet: the chart renders (`helm template`, or Helm's engine through helm-python-sdk),
lints, and its manifests carry what the deployment relies on: probes, the migrations hook, secrets,
autoscaling on queue depth, pool managers only on binder-capable nodes, env the real Settings accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import (
    CHART,
    MODEL_CARD_FLAGS,
    HelmError,
    helm_lint,
    helm_renderer,
    helm_template,
    settings_from_env,
)

VALUES: dict[str, Any] = {
    "database": {"url": "postgresql+asyncpg://pf:pw@db:5432/phonefleet"},
    "redis": {"url": "redis://redis:6379/0", "address": "redis:6379"},
    "auth": {"loginSecret": "login-7f3a9c", "webhookSecret": "hook-7f3a9c"},
    "model": {"baseUrl": "http://vllm:8000/v1"},
}


@pytest.fixture
def render(tmp_path: Path) -> Any:
    if helm_renderer() is None:
        pytest.skip("neither `helm` nor helm-python-sdk is installed here; .ci/run installs helm-python-sdk")
    return lambda values: helm_template(values, tmp_path)


def by_kind(manifests: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["kind"], m["metadata"]["name"]): m for m in manifests}


def container_env(manifest: dict[str, Any], secret: dict[str, str]) -> dict[str, str]:
    """The env a container of this workload gets: its Secret, then plain values (downward API → samples)."""
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    env = dict(secret)
    samples = {"spec.nodeName": "node-a", "status.hostIP": "10.0.0.7"}
    for item in container["env"]:
        env[item["name"]] = (
            item["value"] if "value" in item else samples[item["valueFrom"]["fieldRef"]["fieldPath"]]
        )
    return env


def test_chart_metadata_and_values_parse() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["type"]) == ("v2", "phonefleet", "application")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["autoscaling"]["mode"] in ("keda-redis", "keda-prometheus", "hpa-external")
    assert values["pool"]["nodeSelector"] == {"phonefleet.io/redroid": "true"}
    templates = sorted(p.name for p in (CHART / "templates").iterdir())
    for needed in (
        "api.yaml",
        "worker.yaml",
        "pool.yaml",
        "migrations-job.yaml",
        "secret.yaml",
        "autoscaling.yaml",
    ):
        assert needed in templates


def test_chart_renders_the_fleet(render: Any, tmp_path: Path) -> None:
    objects = by_kind(render(VALUES))
    api = objects[("Deployment", "pf-phonefleet-api")]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"][:3] == ["api", "--host", "0.0.0.0"]
    assert ("Service", "pf-phonefleet-api") in objects

    job = objects[("Job", "pf-phonefleet-migrate")]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    secret = objects[("Secret", "pf-phonefleet-secrets")]
    # The Secret exists before the migrations hook that reads it.
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )

    worker = objects[("Deployment", "pf-phonefleet-worker")]
    assert "replicas" not in worker["spec"], "the autoscaler owns the replica count"
    scaled = objects[("ScaledObject", "pf-phonefleet-worker")]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "pf-phonefleet-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert (trigger["type"], trigger["metadata"]["listName"]) == ("redis", "phonefleet.tasks")

    pool = objects[("DaemonSet", "pf-phonefleet-pool")]
    spec = pool["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"phonefleet.io/redroid": "true"}
    assert spec["tolerations"][0]["key"] == "phonefleet.io/redroid"
    assert spec["volumes"][0]["hostPath"] == {"path": "/var/run/docker.sock", "type": "Socket"}

    # Every workload's environment builds the real Settings; the pool's becomes a redroid config.
    for manifest in (api, worker, pool, job):
        env = container_env(manifest, secret["stringData"])
        settings = settings_from_env(env)
        assert settings.env == "prod" and settings.database_url == VALUES["database"]["url"]
        assert (env["PHONEFLEET_LOG_FORMAT"], env["PHONEFLEET_LOG_LEVEL"]) == ("json", "INFO")
    pool_settings = settings_from_env(container_env(pool, secret["stringData"])).pool
    assert (pool_settings.provider, pool_settings.redroid.pool_id, pool_settings.redroid.host) == (
        "redroid",
        "node-a",
        "10.0.0.7",
    )
    assert helm_lint(VALUES, tmp_path) == []


def test_chart_autoscaling_modes_vllm_and_existing_secret(render: Any) -> None:
    hpa = by_kind(render({**VALUES, "autoscaling": {"mode": "hpa-external"}}))
    metric = hpa[("HorizontalPodAutoscaler", "pf-phonefleet-worker")]["spec"]["metrics"][0]["external"][
        "metric"
    ]
    assert metric["name"] == "phonefleet_queue_depth"
    prom = by_kind(render({**VALUES, "autoscaling": {"mode": "keda-prometheus"}}))
    assert (
        "phonefleet_queue_depth"
        in prom[("ScaledObject", "pf-phonefleet-worker")]["spec"]["triggers"][0]["metadata"]["query"]
    )
    fixed = by_kind(render({**VALUES, "autoscaling": {"enabled": False}, "worker": {"replicas": 3}}))
    assert fixed[("Deployment", "pf-phonefleet-worker")]["spec"]["replicas"] == 3

    served = by_kind(render({**VALUES, "model": {"baseUrl": ""}, "vllm": {"enabled": True}}))
    (vllm,) = served[("Deployment", "pf-phonefleet-vllm")]["spec"]["template"]["spec"]["containers"]
    assert vllm["image"].startswith("vllm/vllm-openai:v0.12") and set(MODEL_CARD_FLAGS) <= set(vllm["args"])
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    api_env = served[("Deployment", "pf-phonefleet-api")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "PHONEFLEET_MODEL__BASE_URL", "value": "http://pf-phonefleet-vllm:8000/v1"} in api_env

    external = by_kind(
        render(
            {"existingSecret": "mine", "model": {"baseUrl": "http://m/v1"}, "redis": {"address": "r:6379"}}
        )
    )
    assert not any(kind == "Secret" for kind, _ in external)
    worker = external[("Deployment", "pf-phonefleet-worker")]["spec"]["template"]["spec"]["containers"][0]
    assert worker["envFrom"] == [{"secretRef": {"name": "mine"}}]


def test_chart_refuses_missing_values_with_a_message(render: Any) -> None:
    with pytest.raises(HelmError, match=r"database\.url is required"):
        render({k: v for k, v in VALUES.items() if k != "database"})
    with pytest.raises(HelmError, match=r"autoscaling\.mode"):
        render({**VALUES, "autoscaling": {"mode": "cpu"}})


def test_chart_shares_the_data_volume_with_the_pool_and_sets_storage(render: Any) -> None:
    """The pool mounts the data volume the API and workers share (its reaper removes screenshots
    there; personal phones' data folders live there), at the same path and with the same settings."""
    values = {**VALUES, "storage": {"encryptionKey": "k-7f3a9c", "retentionDays": 30}}
    objects = by_kind(render(values))
    secret = objects[("Secret", "pf-phonefleet-secrets")]["stringData"]
    seen = set()
    for kind, name in (("Deployment", "api"), ("Deployment", "worker"), ("DaemonSet", "pool")):
        manifest = objects[(kind, f"pf-phonefleet-{name}")]
        spec = manifest["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["data"] == "/var/lib/phonefleet", name
        (data,) = [v for v in spec["volumes"] if v["name"] == "data"]
        assert data["persistentVolumeClaim"]["claimName"] == "pf-phonefleet-data"
        settings = settings_from_env(container_env(manifest, secret))
        assert settings.storage.encryption_key.get_secret_value() == "k-7f3a9c"
        assert settings.storage.retention_days == 30
        seen.add((settings.data_dir, settings.personal_phones.data_dir))
    assert seen == {(Path("/var/lib/phonefleet"), Path("/var/lib/phonefleet/personal-phones"))}
