"""The control plane's database: rows, column types, engines. Migrations: ``orchestrator.db.migrate``."""

from orchestrator.db.engine import (
    BEGIN_IMMEDIATE,
    DbSession,
    DbSessions,
    make_engine,
    make_sessionmaker,
    warm_pool,
)
from orchestrator.db.enums import (
    CANCEL_REQUESTED,
    HELD_TASK_STATUSES,
    WORKER_LOST,
    DeviceState,
    SessionState,
    TaskStatus,
    UserRole,
    WebhookStatus,
)
from orchestrator.db.models import (
    ApiKey,
    Base,
    Device,
    DeviceSession,
    Event,
    Lease,
    Step,
    Task,
    Tenant,
    User,
    WebhookDelivery,
)
from orchestrator.db.types import UTCDateTime, utcnow

__all__ = [
    "BEGIN_IMMEDIATE",
    "CANCEL_REQUESTED",
    "HELD_TASK_STATUSES",
    "WORKER_LOST",
    "ApiKey",
    "Base",
    "DbSession",
    "DbSessions",
    "Device",
    "DeviceSession",
    "DeviceState",
    "Event",
    "Lease",
    "SessionState",
    "Step",
    "Task",
    "TaskStatus",
    "Tenant",
    "UTCDateTime",
    "User",
    "UserRole",
    "WebhookDelivery",
    "WebhookStatus",
    "make_engine",
    "make_sessionmaker",
    "utcnow",
    "warm_pool",
]
