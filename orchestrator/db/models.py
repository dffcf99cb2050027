"""The control plane's rows (``docs/control-plane.md`` has the table of tables).

Portable to PostgreSQL and SQLite: UUID keys (``Uuid``), aware UTC times (``UTCDateTime``), enums
as strings with a CHECK, JSON as JSONB on PostgreSQL. JSON columns do not track in-place changes:
assign a new value to save one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orchestrator.db.enums import (
    CatchUp,
    DeviceState,
    Overlap,
    PersonalPhoneState,
    SessionState,
    TaskStatus,
    UserRole,
    WebhookStatus,
)
from orchestrator.db.types import JSONType, UTCDateTime, str_enum, utcnow

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Device",
    "DeviceSession",
    "Event",
    "Lease",
    "PersonalPhone",
    "Schedule",
    "Secret",
    "Step",
    "Task",
    "Tenant",
    "User",
    "WebhookDelivery",
]

# Named constraints, so later migrations (SQLite batch mode included) can drop them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Integer ids on SQLite must be INTEGER PRIMARY KEY to autoincrement; BIGINT elsewhere.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base: shared metadata and the Python type → column type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        uuid.UUID: Uuid(),
    }


class _Row:
    """A UUID primary key and a creation time, which every table but ``events`` has."""

    # sort_order puts them first in CREATE TABLE (mixin columns would otherwise come last).
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-2)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, sort_order=-1)


class Tenant(_Row, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Days its finished tasks and its events are kept; None: storage.retention_days (docs/security.md).
    retention_days: Mapped[int | None]
    # Set by DELETE /api/v1/tenant: its data is gone, its rows go once its personal phones' data is.
    deleted_at: Mapped[dt.datetime | None]
    # This tenant's own limits, overriding settings.quotas by name ({"max_concurrent_tasks": 1});
    # a name absent takes the setting, null is unlimited (orchestrator/db/quotas.py).
    limits: Mapped[dict[str, Any] | None]


class User(_Row, Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[UserRole] = mapped_column(str_enum(UserRole, "user_role", 16), default=UserRole.MEMBER)


class ApiKey(_Row, Base):
    """An API key: shown once as ``pf_<prefix>_<secret>``; only the secret's sha256 is kept."""

    __tablename__ = "api_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Unique so a presented key finds exactly one row; the generator retries on a collision.
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class AuditEntry(_Row, Base):
    """One operator's or admin's action (docs/security.md, "Audit log"): who, what, on what.

    Written in the same transaction as the change it records (``services/audit.py``). No foreign
    keys: an entry outlives the key, user and even the tenant it names.
    """

    __tablename__ = "audit_log"
    # The tenant's own list (its admins) and the operator's list of all, both newest first.
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"), Index(None, "created_at", "id"))

    tenant_id: Mapped[uuid.UUID | None]  # the actor's tenant; null for the command line
    key_id: Mapped[uuid.UUID | None]  # the actor's API key; null for the command line
    user_id: Mapped[uuid.UUID | None]
    role: Mapped[str] = mapped_column(String(16))  # the actor's role then, or "cli"
    action: Mapped[str] = mapped_column(String(64))  # "device.drain", "api_key.revoke", …
    target: Mapped[str] = mapped_column(String(255))  # what it acted on: "device:<id>", "api_key:<id>"
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Device(_Row, Base):
    """A phone in the pool, with its current lease denormalised onto it (one atomic update leases it)."""

    __tablename__ = "devices"
    # state first: the lease query picks idle phones, the reaper leased ones past lease_expires_at.
    __table_args__ = (Index(None, "state", "lease_expires_at"),)

    provider: Mapped[str] = mapped_column(String(32))
    serial: Mapped[str] = mapped_column(String(255), unique=True)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[DeviceState] = mapped_column(
        str_enum(DeviceState, "device_state"), default=DeviceState.PROVISIONING
    )
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # No foreign key: leases already point at devices, and a cycle would complicate every migration.
    lease_id: Mapped[uuid.UUID | None]
    lease_holder: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[dt.datetime | None]
    health_checked_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Quarantine (control-plane.md, "Quarantine"): set with state unhealthy when the phone stopped
    # answering for good; such a row is never made idle again (mark_idle and mark_resetting refuse
    # it), so it is never leased. Cleared only when the row comes back as a new phone or its
    # provider, unable to replace it, gives it another chance after the pool's quarantine period.
    quarantined_at: Mapped[dt.datetime | None]
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    # The personal phone whose data this device runs now (docs/personal-phones.md): set when a
    # lease wakes one on it, cleared only once the pool manager has put the device back in factory
    # state. No foreign key, like lease_id: personal_phones points back here.
    personal_phone_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PersonalPhone(_Row, Base):
    """A user's persistent phone: its data outlives any device it runs on (docs/personal-phones.md)."""

    __tablename__ = "personal_phones"
    __table_args__ = (Index(None, "tenant_id", "user_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[PersonalPhoneState] = mapped_column(
        str_enum(PersonalPhoneState, "personal_phone_state", 16), default=PersonalPhoneState.ASLEEP
    )
    device_profile: Mapped[dict[str, Any] | None]  # what its device must match, as for tasks
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    holder: Mapped[str | None] = mapped_column(String(255))  # the lease holder using it now
    last_used_at: Mapped[dt.datetime | None]
    woke_at: Mapped[dt.datetime | None]  # when its current device was asked to wake it
    wake_ms: Mapped[int | None]  # how long its last wake took
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set by DELETE: hidden from every read at once; the pool manager then stops its device,
    # removes its data and deletes the row.
    deleted_at: Mapped[dt.datetime | None]
    # The apps (package names) a task on this phone may use; None: any (docs/security.md).
    allowed_apps: Mapped[list[Any] | None]
    # The pool (``pool_id``) whose host keeps its data, for providers whose data is local to a pool
    # (redroid's volumes): set by its first wake (or import); only that pool wakes it afterwards.
    home_pool: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Task(_Row, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index(None, "tenant_id", "status"),
        Index(None, "tenant_id", "created_at", "id"),  # cursor pagination: (created_at, id) after a cursor
        Index(None, "status", "heartbeat_at"),  # the sweeper scans by status across tenants
        UniqueConstraint("schedule_id", "due_at"),  # one run per due time (NULLs, by hand, are apart)
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    instruction: Mapped[str] = mapped_column(Text)
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "task_status"), default=TaskStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(String(64))  # machine-readable: "worker_lost", "max_steps"
    message: Mapped[str | None] = mapped_column(Text)
    device_profile: Mapped[dict[str, Any] | None]  # what the device must match, e.g. {"android": 13}
    personal_phone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personal_phones.id", ondelete="SET NULL")
    )
    max_steps: Mapped[int] = mapped_column(default=50)  # per try
    # Tries the agent gets after its own failures (stuck, max_steps…), on the same phone; counted
    # apart from ``attempts`` (the infrastructure's). docs/control-plane.md, "Tries".
    max_tries: Mapped[int] = mapped_column(default=1, server_default="1")
    # A task chain: one {"goal", "status", ...} per subgoal, in order (None: no chain), rewritten by
    # the worker as it goes; what a failed subgoal does (stop | ask). docs/api.md, "Task chains".
    subgoals: Mapped[list[Any] | None]
    on_step_failure: Mapped[str | None] = mapped_column(String(8))
    timeout_s: Mapped[int] = mapped_column(default=1800)
    model: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    # "metadata" is reserved on declarative classes, so the attribute is metadata_.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # The apps (package names) the agent may use, the launcher and system UI besides; None: any.
    # A task on a personal phone is held to its phone's list too (docs/security.md, "App allowlist").
    allowed_apps: Mapped[list[Any] | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"))
    worker_id: Mapped[str | None] = mapped_column(String(255))
    claimed_at: Mapped[dt.datetime | None]
    heartbeat_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any] | None]  # timings, usage
    # Why the task is not moving, {kind, message, since} (enums.waiting), or None while it moves
    # and once it ended. Written in the same statement as the change that makes it wait or move.
    waiting: Mapped[dict[str, Any] | None]
    # May an attempt that ended for the infrastructure be retried after the task acted on the phone?
    # None: yes, unless it made a sensitive step (a confirmation or a person's takeover); the
    # submitter's choice otherwise (docs/control-plane.md, "Retries").
    retry_after_acting: Mapped[bool | None]
    # When the next attempt of a re-queued task is due (its message was sent with that delay); the
    # sweeper takes its message for lost only a grace after it. None once claimed, and before any retry.
    retry_at: Mapped[dt.datetime | None]
    # A schedule's run: the schedule and the due time it was made for (None for a task submitted
    # by hand). Unique together: whatever races the schedulers lose, one due time makes one task.
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime | None]
    # An eval's task: the eval it belongs to, and what the worker evaluates beside the agent
    # ({suite, template, params, seed, repeat}: worker/eval/evaluation.py; docs/evals.md). The
    # score is written into ``result.evaluation``.
    eval_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("evals.id", ondelete="SET NULL"), index=True)
    evaluation: Mapped[dict[str, Any] | None]


class Eval(_Row, Base):
    """A suite run with one or more models, repeated: its tasks carry ``eval_id`` (docs/evals.md)."""

    __tablename__ = "evals"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    suite: Mapped[str] = mapped_column(String(64))
    models: Mapped[list[Any]]  # the tasks' model names, in the order given
    templates: Mapped[list[Any] | None]  # the templates chosen; None: the whole suite
    repeat: Mapped[int] = mapped_column(default=1)
    seed: Mapped[int] = mapped_column(default=0)
    parallel: Mapped[int | None]  # the most tasks of the eval queued at once; None: all


class Schedule(_Row, Base):
    """A task to submit again and again: by a cron expression in a time zone, or every ``interval_s``.

    ``next_due_at`` is the claim: a scheduler owns a due time by moving it on in one conditional
    UPDATE (``orchestrator/services/scheduler.py``), so several schedulers make one run per due time.
    """

    __tablename__ = "schedules"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),  # the tenant's list, paged like tasks
        Index(None, "paused", "next_due_at"),  # the scheduler's "what is due" scan
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    task: Mapped[dict[str, Any]]  # the task body each run is made from (TaskSpec.stored_fields)
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    interval_s: Mapped[int | None]
    catch_up: Mapped[CatchUp] = mapped_column(str_enum(CatchUp, "schedule_catch_up", 16), default=CatchUp.SKIP)
    overlap: Mapped[Overlap] = mapped_column(str_enum(Overlap, "schedule_overlap", 16), default=Overlap.SKIP)
    paused: Mapped[bool] = mapped_column(default=False)
    # Why it paused when it paused itself ("failures"); None when a person paused it or it runs.
    paused_reason: Mapped[str | None] = mapped_column(String(64))
    next_due_at: Mapped[dt.datetime]
    last_due_at: Mapped[dt.datetime | None]  # the latest due time a scheduler claimed
    # No foreign key (as devices.lease_id): tasks already point here, and a cycle complicates migrations.
    last_run_id: Mapped[uuid.UUID | None]
    # overlap=queue: the due time of the run waiting for the previous one to end.
    queued_due_at: Mapped[dt.datetime | None]
    # The run whose end was last counted, and how many runs in a row ended failed.
    counted_run_id: Mapped[uuid.UUID | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeviceSession(_Row, Base):
    """A phone held for manual or external-agent use (no task)."""

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "tenant_id", "state"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id"), index=True)
    state: Mapped[SessionState] = mapped_column(
        str_enum(SessionState, "session_state", 16), default=SessionState.ACTIVE
    )
    ttl_s: Mapped[int] = mapped_column(default=600)
    personal_phone_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("personal_phones.id", ondelete="SET NULL")
    )
    expires_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]


class Lease(_Row, Base):
    """One row per lease, never deleted: the pool's audit log."""

    __tablename__ = "leases"
    __table_args__ = (
        Index(None, "device_id", "released_at"),
        # At most one open lease per device, whatever bug or race tries to add a second.
        Index(
            "uq_leases_device_id_open",
            "device_id",
            unique=True,
            postgresql_where=text("released_at IS NULL"),
            sqlite_where=text("released_at IS NULL"),
        ),
    )

    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id"))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"))
    holder: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id"), index=True)
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sessions.id"))
    acquired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime | None]
    released_at: Mapped[dt.datetime | None]
    release_reason: Mapped[str | None] = mapped_column(String(64))


class Step(_Row, Base):
    """One step of a task: the agent's (screenshot → model reply → action → result), or a person's
    action on the phone during a takeover (``actor`` = ``user``; ``orchestrator/db/steps.py``)."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("task_id", "index"),)

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    index: Mapped[int]
    actor: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")  # agent | user
    screenshot: Mapped[str | None] = mapped_column(String(1024))  # path relative to data_dir
    current_app: Mapped[str | None] = mapped_column(String(255))
    thinking: Mapped[str | None] = mapped_column(Text)
    action_text: Mapped[str | None] = mapped_column(Text)
    action: Mapped[dict[str, Any] | None]
    result: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    # The screenshot's regions masked before the model saw it and before it was stored: [{"bounds":
    # [left, top, right, bottom], "kind": "password" | a text pattern's name}], never their content.
    redactions: Mapped[list[Any] | None]
    # A planner/grounder pair's step: each model's reply in order ({"role", "reply", "model_s", a
    # grounder's "target"}; worker/agent/results.py StepRecord.replies). None: one model.
    replies: Mapped[list[Any] | None]
    subgoal: Mapped[int | None]  # the 0-based subgoal of the task's chain it was made for (None: no chain)


class Secret(_Row, Base):
    """A tenant's secret for the agent to type (``Type_Secret(name=…)``): its value encrypted with
    ``secrets.key`` (Fernet; ``orchestrator/services/vault.py``), never returned by the API."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)  # a Fernet token
    rotated_at: Mapped[dt.datetime | None]


class ShareLink(_Row, Base):
    """A link that lets anyone holding it watch (or, ``mode`` control, touch) one phone without an
    API key (``orchestrator/services/share_links.py``): only sha256 of its token is kept."""

    __tablename__ = "share_links"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    # The creator (no foreign keys: the link, like an audit entry, outlives a deleted user or key).
    user_id: Mapped[uuid.UUID | None]
    key_id: Mapped[uuid.UUID | None]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "task", "session" or "device"
    target_id: Mapped[uuid.UUID]
    mode: Mapped[str] = mapped_column(String(16))  # "view" or "control"
    expires_at: Mapped[dt.datetime]
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    revoked_at: Mapped[dt.datetime | None]


class ShareLinkOpen(_Row, Base):
    """One opening of a share link: when (``created_at``) and from where. Its id, random, is what
    the opened page presents to watch, so a page counts once against ``max_uses``."""

    __tablename__ = "share_link_opens"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    link_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("share_links.id"), index=True)
    client: Mapped[str | None] = mapped_column(String(100))  # the client's address
    user_agent: Mapped[str | None] = mapped_column(String(300))


class Event(Base):
    """Append-only outbox and audit log; the integer id orders events."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "tenant_id", "id"),
        Index(None, "task_id", "id"),
        # AUTOINCREMENT: SQLite would otherwise reuse the ids of deleted newest rows, and readers
        # that resume "after id N" would miss the new rows.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))  # "task.status", "task.step", … (grows without migrations)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)


class WebhookSubscription(_Row, Base):
    """A tenant's standing order for events of its tasks, POSTed to ``url`` signed with ``secret``
    (docs/api.md, "Webhook subscriptions"). The secret is kept as is: signing needs it."""

    __tablename__ = "webhook_subscriptions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[Any]]  # event types, e.g. ["task.status"]
    secret: Mapped[str] = mapped_column(String(128))
    secret_rotated_at: Mapped[dt.datetime | None]


class WebhookDelivery(_Row, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)  # the deliverer's "what is due" scan

    event_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("events.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    # The subscription it goes to (signed with its secret); None: the task's own webhook_url.
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[WebhookStatus] = mapped_column(
        str_enum(WebhookStatus, "webhook_status", 16), default=WebhookStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
