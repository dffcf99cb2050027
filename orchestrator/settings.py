"""PhoneFleet settings: one ``Settings`` per process, built in the entry point and passed down.

Read from the environment (prefix ``PHONEFLEET_``, nested groups joined with ``__``, e.g.
``PHONEFLEET_MODEL__BASE_URL``) and from keyword arguments, which win over the environment.
The defaults are what ``phonefleet up`` runs on one machine: SQLite under ``data_dir``, no Redis,
three simulated phones and the reference model. ``docs/control-plane.md`` has the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "PLACEHOLDER_SECRETS",
    "ApiSettings",
    "AuthSettings",
    "ModelSettings",
    "PoolSettings",
    "Settings",
    "load_settings",
]

# Values that mean "nobody set this": fine on a laptop, refused when env is not "dev".
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "changeme", "secret"})


class _Group(BaseModel):
    # A misspelt PHONEFLEET_MODEL__… variable is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Group):
    """The OpenAI-compatible model server the agents talk to."""

    base_url: str = "http://127.0.0.1:8001/v1"
    name: str = "autoglm-phone-9b"
    # Local vLLM/SGLang servers need no key, so empty is allowed; only a template value is refused.
    api_key: SecretStr = SecretStr("")
    max_in_flight: int = Field(default=8, ge=1)
    lang: Literal["en", "zh"] = "en"


class PoolSettings(_Group):
    """The device pool: which provider, how many phones, lease timing (seconds)."""

    provider: Literal["sim", "redroid", "static_adb"] = "sim"
    count: int = Field(default=3, ge=0)
    base_port: int = Field(default=6520, ge=1, le=65535)
    lease_ttl_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=15.0, gt=0)
    min_idle: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _heartbeat_inside_ttl(self) -> PoolSettings:
        # A holder that heartbeats less often than the TTL loses its lease while still alive.
        if self.heartbeat_s >= self.lease_ttl_s:
            raise ValueError(
                f"pool.heartbeat_s ({self.heartbeat_s}) must be below lease_ttl_s ({self.lease_ttl_s})"
            )
        return self


class AuthSettings(_Group):
    """Dashboard sessions and per-tenant rate limits."""

    session_secret: SecretStr = SecretStr("changethis")
    rate_limit_per_s: float = Field(default=10.0, gt=0)
    rate_limit_burst: int = Field(default=50, ge=1)


class ApiSettings(_Group):
    """Where the HTTP API listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)


class Settings(BaseSettings):
    """Everything a PhoneFleet process is configured by."""

    model_config = SettingsConfigDict(
        env_prefix="PHONEFLEET_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    env: Literal["dev", "prod"] = "dev"
    data_dir: Path = Path("~/.local/share/phonefleet")
    database_url: str = ""  # empty: SQLite at {data_dir}/phonefleet.db (filled in below)
    redis_url: str | None = None
    migrations_dir: Path | None = None  # None: the migrations/ folder next to the orchestrator package
    model: ModelSettings = Field(default_factory=ModelSettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        # Absolute, so the SQLite URL and screenshot paths do not depend on the working directory.
        return value.expanduser().resolve()

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'phonefleet.db'}"
        if self.env != "dev":
            secrets = {
                "auth.session_secret": self.auth.session_secret.get_secret_value(),
                "model.api_key": self.model.api_key.get_secret_value(),
            }
            for name, value in secrets.items():
                # An empty model key is legitimate (a local server); an empty session secret is not.
                if value == "" and name == "model.api_key":
                    continue
                if value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"{name} is a placeholder ({value!r}); set a real secret when env={self.env!r}"
                    )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment; keyword arguments win over it (nested groups as dicts)."""
    return Settings(**overrides)
