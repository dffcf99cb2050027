"""Settings: defaults, environment parsing, derived values and the refusal of placeholder secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.settings import Settings, load_settings


def test_defaults_are_what_phonefleet_up_runs(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.env == "dev"
    assert settings.data_dir == tmp_path.resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/phonefleet.db"
    assert settings.redis_url is None
    assert settings.migrations_dir is None
    assert (settings.model.base_url, settings.model.name, settings.model.lang) == (
        "http://127.0.0.1:8001/v1", "autoglm-phone-9b", "en",
    )  # fmt: skip
    assert settings.model.api_key.get_secret_value() == ""
    assert (settings.pool.provider, settings.pool.count, settings.pool.base_port) == ("sim", 3, 6520)
    assert (settings.pool.lease_ttl_s, settings.pool.heartbeat_s, settings.pool.min_idle) == (60, 15, 1)
    assert (settings.auth.rate_limit_per_s, settings.auth.rate_limit_burst) == (10, 50)
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8000)


def test_default_data_dir_is_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve() / ".local/share/phonefleet"
    assert settings.database_url.endswith(f"{tmp_path.resolve()}/.local/share/phonefleet/phonefleet.db")


def test_relative_data_dir_becomes_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(data_dir="state").data_dir == tmp_path.resolve() / "state"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHONEFLEET_DATABASE_URL", "postgresql+asyncpg://pf@db:5432/pf")
    monkeypatch.setenv("PHONEFLEET_REDIS_URL", "redis://cache:6379/2")
    monkeypatch.setenv("PHONEFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHONEFLEET_MODEL__BASE_URL", "http://gpu:8000/v1")
    monkeypatch.setenv("PHONEFLEET_MODEL__MAX_IN_FLIGHT", "32")
    monkeypatch.setenv("PHONEFLEET_POOL__COUNT", "7")
    monkeypatch.setenv("PHONEFLEET_API__PORT", "9000")
    settings = load_settings()
    assert settings.database_url == "postgresql+asyncpg://pf@db:5432/pf"  # given: not derived
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.data_dir == tmp_path.resolve()
    assert settings.model.base_url == "http://gpu:8000/v1"
    assert settings.model.max_in_flight == 32
    assert settings.model.name == "autoglm-phone-9b"  # the rest of the group keeps its defaults
    assert settings.pool.count == 7
    assert settings.api.port == 9000


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_DATABASE_URL", "postgresql+asyncpg://pf@db/pf")
    monkeypatch.setenv("PHONEFLEET_MODEL__NAME", "from-env")
    settings = load_settings(database_url="sqlite+aiosqlite:////tmp/x.db", model={"base_url": "http://m/v1"})
    assert settings.database_url == "sqlite+aiosqlite:////tmp/x.db"
    assert settings.model.base_url == "http://m/v1"


def test_empty_redis_url_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_REDIS_URL", "")
    assert load_settings().redis_url is None


@pytest.mark.parametrize("secret", ["changethis", "", "  ChangeThis "])
def test_placeholder_login_secret_refused_outside_dev(secret: str) -> None:
    with pytest.raises(ValidationError, match=r"auth\.login_secret is a placeholder"):
        load_settings(env="prod", auth={"login_secret": secret})


def test_placeholder_refused_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_ENV", "prod")
    with pytest.raises(ValidationError, match="login_secret"):
        load_settings()
    monkeypatch.setenv("PHONEFLEET_AUTH__LOGIN_SECRET", "a-real-secret-7f3a9c")
    monkeypatch.setenv("PHONEFLEET_AUTH__WEBHOOK_SECRET", "a-real-webhook-secret-2b8e")
    assert load_settings().auth.login_secret.get_secret_value() == "a-real-secret-7f3a9c"


def test_deprecated_session_names_still_set_the_login(monkeypatch: pytest.MonkeyPatch) -> None:
    # auth.session_secret / auth.session_ttl_s are the old names, accepted for one release.
    old = load_settings(auth={"session_secret": "old-secret-7f3a9c", "session_ttl_s": 60})
    assert old.auth.login_secret.get_secret_value() == "old-secret-7f3a9c" and old.auth.login_ttl_s == 60
    assert old.auth.session_secret is old.auth.login_secret and old.auth.session_ttl_s == 60
    with pytest.raises(ValidationError, match=r"auth\.login_secret is a placeholder"):
        load_settings(env="prod", auth={"session_secret": "changethis"})
    monkeypatch.setenv("PHONEFLEET_AUTH__SESSION_TTL_S", "90")
    monkeypatch.setenv("PHONEFLEET_AUTH__SESSION_SECRET", "from-env-old-name")
    assert load_settings().auth.login_ttl_s == 90
    both = load_settings(auth={"login_secret": "new-name-wins"})
    assert both.auth.login_secret.get_secret_value() == "new-name-wins"


def test_model_api_key_may_be_empty_but_not_a_placeholder_in_prod() -> None:
    auth = {"login_secret": "a-real-secret-7f3a9c", "webhook_secret": "a-real-webhook-secret-2b8e"}
    assert load_settings(env="prod", auth=auth).model.api_key.get_secret_value() == ""
    with pytest.raises(ValidationError, match=r"model\.api_key"):
        load_settings(env="prod", auth=auth, model={"api_key": "changethis"})


def test_dev_accepts_the_placeholder() -> None:
    assert load_settings(env="dev").auth.login_secret.get_secret_value() == "changethis"


def test_secrets_are_not_printed() -> None:
    settings = load_settings(model={"api_key": "sk-do-not-log"}, auth={"login_secret": "hush-123456"})
    assert "sk-do-not-log" not in repr(settings)
    assert "hush-123456" not in repr(settings)


@pytest.mark.parametrize(
    "overrides",
    [
        {"env": "staging"},
        {"pool": {"heartbeat_s": 60, "lease_ttl_s": 60}},
        {"model": {"max_in_flight": 0}},
        {"unknown_field": 1},
    ],
)
def test_invalid_values_refused(overrides: dict) -> None:
    with pytest.raises(ValidationError):
        load_settings(**overrides)


def test_misspelt_nested_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_MODEL__BASEURL", "http://gpu:8000/v1")
    with pytest.raises(ValidationError, match="baseurl"):
        load_settings()


def test_worker_liveness_is_apart_from_the_lease_and_follows_a_shorter_one(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = Settings().pool
    assert (pool.worker_heartbeat_s, pool.worker_lost_s, pool.lease_ttl_s) == (3, 15, 60)
    # Left unset, they follow a shorter lease: a run never outlives its lease.
    monkeypatch.setenv("PHONEFLEET_POOL__LEASE_TTL_S", "3")
    monkeypatch.setenv("PHONEFLEET_POOL__HEARTBEAT_S", "1")
    pool = load_settings().pool
    assert (pool.worker_heartbeat_s, pool.worker_lost_s) == (1, 3)
    # Set, they are taken as given, with three beats in the window at least.
    monkeypatch.setenv("PHONEFLEET_POOL__WORKER_LOST_S", "30")
    assert (load_settings().pool.worker_heartbeat_s, load_settings().pool.worker_lost_s) == (1, 30)
    monkeypatch.setenv("PHONEFLEET_POOL__WORKER_HEARTBEAT_S", "11")
    with pytest.raises(ValidationError, match="at most a third of worker_lost_s"):
        load_settings()


def test_the_agent_group_asks_by_default_and_bounds_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert (settings.agent.on_stuck, settings.agent.wait_for_user_s) == ("ask", 900.0)
    monkeypatch.setenv("PHONEFLEET_AGENT__ON_STUCK", "fail")
    monkeypatch.setenv("PHONEFLEET_AGENT__WAIT_FOR_USER_S", "30")
    assert (Settings().agent.on_stuck, Settings().agent.wait_for_user_s) == ("fail", 30.0)
    with pytest.raises(ValidationError):
        Settings(agent={"on_stuck": "loop"})
    with pytest.raises(ValidationError):
        Settings(agent={"wait_for_user_s": 0})


@pytest.mark.parametrize("root", ["sdcard/", "/sdcard", "/", "/sdcard/../data/"])
def test_a_device_file_root_is_an_absolute_folder(root: str) -> None:
    with pytest.raises(ValidationError, match="absolute folder ending in '/'"):
        Settings(device_api={"file_roots": [root]})
    assert Settings(device_api={"file_roots": ["/sdcard/Download/"]}).device_api.file_roots == ["/sdcard/Download/"]
