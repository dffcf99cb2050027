"""Reading the deploy/ files as the tools do: compose variables, compose and Helm renderers, env → Settings.

The real renderers are used where they are installed: `docker compose` (v2, the CLI plugin) and
Helm (the `helm` binary, or Helm's own engine through the helm-python-sdk wheel); .ci/run installs
both. The structural checks need neither.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.processes import REPO

DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
CHART = DEPLOY / "helm" / "phonefleet"
# The flags AutoGLM-Phone-9B's model card asks vLLM for (names as vLLM spells them with dashes).
MODEL_CARD_FLAGS = (
    "--allowed-local-media-path=/",
    "--mm-encoder-tp-mode=data",
    "--mm-processor-cache-type=shm",
    '--mm-processor-kwargs={"max_pixels":5000000}',
    "--max-model-len=25480",
    "--chat-template-content-format=string",
    '--limit-mm-per-prompt={"image":10}',
)
SECRETS = {
    "POSTGRES_PASSWORD": "pg-7f3a9c",
    "LOGIN_SECRET": "login-7f3a9c",
    "WEBHOOK_SECRET": "hook-7f3a9c",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?message}`` over a loaded document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"required variable {name} is missing a value: {rest}")
        return rest if kind == "-" else ""

    return _VARIABLE.sub(one, value)


def compose_document(env: dict[str, str]) -> dict[str, Any]:
    """deploy/docker-compose.yml loaded (merge keys resolved by YAML) and interpolated."""
    return interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env)


def compose_command() -> list[str] | None:
    """A Compose v2 CLI: the `docker compose` plugin, or a `docker-compose` that is v2."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and re.search(r"v?2\.\d+", done.stdout):
            return command
    return None


def run_compose_config(env: dict[str, str], *profiles: str) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    assert command is not None
    args = [*command, "-f", str(COMPOSE_FILE)]
    for profile in profiles:
        args += ["--profile", profile]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_") and k not in SECRETS}
    return subprocess.run(
        [*args, "config", "--format", "json"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def helm_renderer() -> str | None:
    """``helm`` (the binary), ``sdk`` (Helm's engine through helm-python-sdk), or None."""
    if shutil.which("helm"):
        return "helm"
    try:
        import helm_python  # noqa: F401
    except ImportError:
        return None
    return "sdk"


def helm_template(values: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    """The chart rendered as `helm template` would, as a list of manifests (hooks included)."""
    renderer = helm_renderer()
    if renderer == "helm":
        values_file = tmp / "values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        done = subprocess.run(
            ["helm", "template", "pf", str(CHART), "--namespace", "fleet", "-f", str(values_file)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise HelmError(done.stderr)
        return [d for d in yaml.safe_load_all(done.stdout) if d]
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        try:
            files = chart.render(values, name="pf", namespace="fleet", is_install=True)
        except helm.HelmError as exc:
            raise HelmError(str(exc)) from exc
    return [
        d
        for name, text in sorted(files.items())
        if name.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]


def helm_lint(values: dict[str, Any], tmp: Path) -> list[str]:
    """Lint errors (not warnings or advice) with these values."""
    if helm_renderer() == "helm":
        values_file = tmp / "lint-values.yaml"
        values_file.write_text(yaml.safe_dump(values))
        done = subprocess.run(
            ["helm", "lint", str(CHART), "-f", str(values_file)], capture_output=True, text=True, timeout=60
        )
        return [] if done.returncode == 0 else [done.stdout + done.stderr]
    import helm_python as helm

    report = helm.lint(str(CHART), values=values)
    return [str(m) for m in report.get("messages", []) if m.get("severity", 0) >= 4] + list(
        report.get("errors", [])
    )


class HelmError(Exception):
    """The chart did not render."""


def settings_from_env(env: dict[str, Any]) -> Any:
    """The real Settings built from a container's PHONEFLEET_* environment (as the process would)."""
    from orchestrator.settings import Settings

    saved = {k: v for k, v in os.environ.items() if k.startswith("PHONEFLEET_")}
    for key in saved:
        del os.environ[key]
    try:
        os.environ.update({k: str(v) for k, v in env.items() if k.startswith("PHONEFLEET_")})
        return Settings()
    finally:
        for key in [k for k in os.environ if k.startswith("PHONEFLEET_")]:
            del os.environ[key]
        os.environ.update(saved)
