"""The TypeScript client (``web/sdk-ts``, docs/sdk-typescript.md): its copy of the OpenAPI document is
the app's as it is now, its generated types are that copy's, it builds with ``tsc``, and its example
runs against a live API. npm's packages are installed inside the folder (``npm ci``, its cache in
``web/sdk-ts/.npm-cache``), nothing outside the repository tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator.cli.openapi import document
from tests.orchestrator.conftest import Api

SDK = Path(__file__).resolve().parents[2] / "web" / "sdk-ts"
REGENERATE = "run `phonefleet openapi -o web/sdk-ts/openapi.json && (cd web/sdk-ts && npm ci && npm run generate)`"


def test_the_clients_copy_of_the_openapi_document_is_the_apps() -> None:
    """A route, parameter or model changed without regenerating the client fails here."""
    assert (SDK / "openapi.json").read_text(encoding="utf-8") == document(), (
        f"web/sdk-ts/openapi.json is not the app's OpenAPI document: {REGENERATE}"
    )


def _npm_env() -> dict[str, str]:
    return {
        **os.environ,
        "npm_config_cache": str(SDK / ".npm-cache"),  # inside the tree (git-ignored)
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
    }


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=SDK, env=env or _npm_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None,
    reason="npm and node (v20) are needed to install and build the TypeScript client; CI machines have them",
)
def test_the_typescript_client_is_current_builds_and_lists_tasks(api: Api, tmp_path: Path) -> None:
    installed = _run("npm", "ci", "--prefer-offline")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # The generated types are those of openapi.json (the same generator and options as `npm run generate`).
    generated = _run("node", "scripts/generate.mjs", str(tmp_path / "schema.ts"))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert (tmp_path / "schema.ts").read_text() == (SDK / "src" / "schema.ts").read_text(), (
        f"web/sdk-ts/src/schema.ts is not generated from openapi.json: {REGENERATE}"
    )

    # Type-checked and compiled (src and the examples) into dist/.
    built = _run("node", "node_modules/typescript/bin/tsc")
    assert built.returncode == 0, built.stdout + built.stderr

    # The compiled example, against the live API: submit, then the list holds the task.
    caller = api.caller()
    env = {**_npm_env(), "PHONEFLEET_URL": api.url, "PHONEFLEET_API_KEY": caller.key}
    listed = _run("node", "dist/examples/list-tasks.js", "Open Settings", env=env, timeout=60)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    first, *tasks = [json.loads(line) for line in listed.stdout.splitlines()]
    assert first["status"] == "queued"
    assert tasks == [{"id": first["submitted"], "status": "queued", "instruction": "Open Settings"}]
    assert caller.http.get(f"/api/v1/tasks/{first['submitted']}").json()["instruction"] == "Open Settings"

    # An error answer is a PhoneFleetError with the API's status and code.
    refused = _run("node", "dist/examples/list-tasks.js", env={**env, "PHONEFLEET_API_KEY": "pf_00000000_wrong"})
    assert refused.returncode == 1 and refused.stderr.startswith("401 "), refused.stdout + refused.stderr
