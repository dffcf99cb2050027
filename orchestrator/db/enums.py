"""The states rows move through, stored as their lowercase string values."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

__all__ = [
    "CANCEL_REQUESTED",
    "FAILED_TASK_STATUSES",
    "HELD_TASK_STATUSES",
    "RETRYING_EVENT",
    "WAITING_EVENT",
    "WORKER_LOST",
    "WORKER_SHUTDOWN",
    "CatchUp",
    "DeviceState",
    "Overlap",
    "PersonalPhoneState",
    "SessionState",
    "TaskStatus",
    "UserRole",
    "WaitingKind",
    "WebhookStatus",
    "waiting",
]


class UserRole(StrEnum):
    """Who a key's user is (docs/security.md, "Roles"): the deployment's ``operator`` (the fleet, every
    tenant; also an admin of its own tenant), a tenant's ``admin`` (its users and keys) or ``member``."""

    OPERATOR = "operator"
    ADMIN = "admin"
    MEMBER = "member"


class DeviceState(StrEnum):
    PROVISIONING = "provisioning"
    IDLE = "idle"
    LEASED = "leased"
    RESETTING = "resetting"
    UNHEALTHY = "unhealthy"
    RETIRED = "retired"


class PersonalPhoneState(StrEnum):
    """Where a personal phone's data is (docs/personal-phones.md): on no device, or on one."""

    ASLEEP = "asleep"  # its data kept, no device runs it
    WAKING = "waking"  # a device was leased for it and the pool manager attaches its data
    READY = "ready"  # a device runs it, nobody holds it (until personal_phones.idle_stop_s)
    IN_USE = "in_use"  # a task or session holds its device
    SLEEPING = "sleeping"  # the pool manager stops its device, keeping the data
    FAILED = "failed"  # its last wake failed (last_error says why); the next use tries again


class TaskStatus(StrEnum):
    QUEUED = "queued"
    LEASING = "leasing"
    RUNNING = "running"
    WAITING_FOR_USER = "waiting_for_user"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    USER_CONTROL = "user_control"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def is_final(self) -> bool:
        """True for the four end states; a task never leaves them."""
        return self in _FINAL_TASK_STATUSES


_FINAL_TASK_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
)
# The end states a schedule counts as a failed run (schedules.max_consecutive_failures); a person's
# cancel is not the schedule's failure.
FAILED_TASK_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.TIMED_OUT})


class CatchUp(StrEnum):
    """What a schedule does with the due times it missed while no scheduler ran."""

    SKIP = "skip"  # none of them: the next run is the next due time in the future
    RUN_ONCE = "run_once"  # one run for all of them, then the next due time in the future


class Overlap(StrEnum):
    """What a schedule does when a run is due while its previous run has not ended."""

    SKIP = "skip"  # no run for that due time
    QUEUE = "queue"  # one run waits and starts when the previous ends (at most one waits)


# The statuses in which a worker holds a task and heartbeats it (the worker and the sweeper agree).
HELD_TASK_STATUSES = (
    TaskStatus.LEASING,
    TaskStatus.RUNNING,
    TaskStatus.WAITING_FOR_USER,
    TaskStatus.AWAITING_CONFIRMATION,
    TaskStatus.USER_CONTROL,
)


# The event for a change of a task's ``waiting`` that comes without a change of status (a status
# change carries ``waiting`` in its ``task.status`` event instead); the API and the worker write it.
WAITING_EVENT = "task.waiting"

# The event that announces an attempt of a task ended because of the infrastructure and another one
# follows (the task is ``queued`` again, ``waiting`` = ``retrying``): the worker's re-queue and a
# claim that takes over a lost worker's task write it (``worker/run/rows.py``).
RETRYING_EVENT = "task.retrying"


class WaitingKind(StrEnum):
    """Why a task is not moving: the ``kind`` of a task's ``waiting`` object (docs/api.md, "Why a task waits").

    One list for the whole product. A task that moves (or has ended) has ``waiting: null``.
    """

    QUEUED = "queued"  # in the queue, no worker has claimed it yet (the API, at creation)
    BROKER_UNAVAILABLE = "broker_unavailable"  # committed but not enqueued; the sweeper re-enqueues it
    NO_DEVICE = "no_device"  # claimed; the run waits for an idle device matching its profile
    MODEL_UNAVAILABLE = "model_unavailable"  # the model client is retrying a failing model server
    TAKEOVER = "takeover"  # the agent asked a person to take over (log in, solve a captcha)
    CONFIRMATION = "confirmation"  # a sensitive action waits for a person's approval
    QUESTION = "question"  # the agent asked a person a question (Interact)
    RETRYING = "retrying"  # an attempt ended for the infrastructure; the next one waits out its backoff
    PERSONAL_PHONE_BUSY = "personal_phone_busy"  # the task's personal phone is held by another task or session
    # Queued, not run: its tenant is at a limit (the worker's claim; orchestrator/db/quotas.py); the
    # sweeper's quota pass sends it again once the tenant has room.
    QUOTA = "quota"


def waiting(kind: WaitingKind, message: str, since: dt.datetime) -> dict[str, str]:
    """A task's ``waiting`` object as stored (``tasks.waiting``) and shown (API, events)."""
    return {"kind": kind.value, "message": message, "since": since.isoformat()}


class WebhookStatus(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt (next_attempt_at)
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last attempt


class SessionState(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    EXPIRED = "expired"


# The key in ``Task.result`` that tells the worker holding a task to stop (``TaskService.cancel``
# writes it; the run's watcher reads it).
CANCEL_REQUESTED = "cancel_requested_at"

# A task's failure reason when the worker holding it stopped heartbeating (the sweeper writes it) or
# found its claim taken over (the run writes it).
WORKER_LOST = "worker_lost"

# The reason of an attempt cut short by its worker's shutdown (``worker/shutdown.py``): re-queued,
# like any end the infrastructure caused; a task's last attempt fails with it.
WORKER_SHUTDOWN = "worker_shutdown"
