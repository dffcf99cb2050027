"""The orchestrator's branches of the error tree (the base lives in ``device_pool/errors.py``).

    PhoneFleetError
    ├─ Unauthenticated            no, malformed, unknown or revoked API key
    ├─ PermissionDenied           authenticated, but not allowed (a member on an admin route)
    ├─ NotFound                   no such row *for this tenant* (another tenant's id is not found either)
    │  ├─ TaskNotFound, DeviceNotFound, SessionNotFound, StepNotFound, ScreenshotNotFound, ApiKeyNotFound, UserNotFound,
    │  ├─ ScheduleNotFound, PersonalPhoneNotFound, WebhookSubscriptionNotFound, SecretNotFound
    │  ├─ ShareLinkNotFound       also a share link's token that is unknown or revoked
    │  ├─ ElementNotFound         a UI element id not on the session phone's screen now
    │  └─ FileNotFound            no file at the path on the session's phone (device API pull)
    ├─ Gone                       it existed, and is over for good
    │  └─ ShareLinkExpired        a share link past its expiry or its max_uses
    ├─ Conflict                   the request contradicts the current state
    │  ├─ InvalidTransition       e.g. cancelling a task that already finished
    │  ├─ IdempotencyConflict     an Idempotency-Key reused with a different body
    │  ├─ DeviceExists            registering a serial the pool already has
    │  ├─ NoLiveDevice            live view or a device call on a task or session that holds no phone now
    │  ├─ LastAdminKey            revoking a tenant's last working admin key
    │  ├─ TenantExists            creating a tenant whose name is taken
    │  ├─ AdbTunnelUnsupported    an ADB tunnel to a phone with no TCP address (a USB handset)
    │  ├─ PersonalPhoneInUse      deleting a personal phone a task or session holds
    │  ├─ PersonalPhoneQuota      a user at personal_phones.max_per_user
    │  ├─ PersonalPhonesUnsupported  the pool's provider cannot keep a phone's data (static ADB)
    │  ├─ VaultUnavailable        the secrets vault has no key (prod without ``vault.key``) or cannot read a value
    │  ├─ StoredFileUnreadable    a stored screenshot sealed with a key other than storage.encryption_key
    │  ├─ TenantBusy              deleting a tenant that still runs tasks or sessions
    │  └─ LimitReached            one more would pass a tenant limit (``schedules.max_per_tenant``)
    ├─ InvalidRequest             input that passed the schema but is still wrong
    │  ├─ ConfirmationMismatch    DELETE of a personal phone (or tenant) whose ?confirm= is not its name
    │  ├─ PersonalPhoneArchiveForeign  an export made with another deployment's key
    │  ├─ PersonalPhoneArchiveDamaged  not an export, or one altered since it was made
    │  ├─ PersonalPhoneArchiveUnsafe   an export whose members would land outside the phone's directory
    │  ├─ InvalidCursor           a pagination cursor we did not hand out
    │  ├─ UnknownDeviceProfile    a device profile name the operator has not configured
    │  ├─ UnknownModelEndpoint    a task ``model`` that names no endpoint of ``model.endpoints``
    │  ├─ InvalidSchedule         a schedule due more often than ``schedules.min_interval_s``, or never
    │  ├─ InvalidSdp              a WebRTC offer that does not parse or offers no H.264 video
    │  ├─ PathNotAllowed          a device file path outside ``device_api.file_roots``, relative, with
    │  │                          ``..``/NUL, through a symbolic link, or a folder
    │  ├─ ApkRejected             an upload that is not an APK, or one the phone's package manager refused
    │  ├─ InvalidTrajectory       a file or folder given to replay or convert that is not a trajectory
    │  └─ InputRejected           device input the phone cannot take: off the screen, an unknown app or
    │                             key, text its keyboard cannot type
    ├─ BadHttpRequest             the HTTP request itself is unusable, whatever the route
    │  ├─ InvalidJson             a JSON body that does not parse, or is nested too deep to parse
    │  ├─ PayloadTooLarge         a body over the limit (``api.edges.MAX_BODY_BYTES``; an upload: its own,
    │  │                          ``device_api.file_max_bytes``, ``apk_max_bytes``, ``personal_phones.max_archive_bytes``),
    │  │                          chunked or not
    │  ├─ HeadersTooLarge         request headers over 16 KiB in total, or over 100 of them
    │  └─ BodyTimeout             a body that stops arriving before its end (shorter than Content-Length)
    ├─ RateLimited                too many requests for this tenant                         [retryable]
    │  └─ QuotaExceeded           a session past a tenant quota (``quotas.*``, docs/api.md "Quotas and usage")
    └─ Unavailable                a dependency is down or overloaded                         [retryable]
       ├─ DatabaseUnavailable     unreachable, pool exhausted, SQLite "database is locked"
       ├─ BrokerUnavailable       the Celery broker refused or timed out
       ├─ ModelServerUnavailable  the model server refused, timed out or answered 5xx (a /readyz check)
       └─ ViewerLimit             a phone already has its maximum number of live viewers

``CapacityError`` (→ ``NoDeviceAvailable``, ``PersonalPhoneBusy``) lives with the pool in ``device_pool/errors.py``.
``orchestrator/api/errors.py`` maps these to HTTP statuses in one table.
"""

from __future__ import annotations

from typing import Any

from device_pool.errors import PhoneFleetError

__all__ = [
    "AdbTunnelUnsupported",
    "ApiKeyNotFound",
    "ApkRejected",
    "BadHttpRequest",
    "BodyTimeout",
    "BrokerUnavailable",
    "ConfirmationMismatch",
    "Conflict",
    "DatabaseUnavailable",
    "DeviceExists",
    "DeviceNotFound",
    "ElementNotFound",
    "EvalNotFound",
    "FileNotFound",
    "Gone",
    "HeadersTooLarge",
    "IdempotencyConflict",
    "InputRejected",
    "InvalidAnswer",
    "InvalidCursor",
    "InvalidEval",
    "InvalidJson",
    "InvalidRequest",
    "InvalidSchedule",
    "InvalidSdp",
    "InvalidTrajectory",
    "InvalidTransition",
    "LastAdminKey",
    "LimitReached",
    "ModelServerUnavailable",
    "NoLiveDevice",
    "NotFound",
    "PathNotAllowed",
    "PayloadTooLarge",
    "PermissionDenied",
    "PersonalPhoneArchiveDamaged",
    "PersonalPhoneArchiveForeign",
    "PersonalPhoneArchiveUnsafe",
    "PersonalPhoneInUse",
    "PersonalPhoneNotFound",
    "PersonalPhoneQuota",
    "PersonalPhonesUnsupported",
    "PhoneFleetError",
    "QuotaExceeded",
    "RateLimited",
    "ScheduleNotFound",
    "ScreenshotNotFound",
    "SecretNotFound",
    "SessionNotFound",
    "ShareLinkExpired",
    "ShareLinkNotFound",
    "StepNotFound",
    "StoredFileUnreadable",
    "TaskNotFound",
    "TenantBusy",
    "TenantExists",
    "Unauthenticated",
    "Unavailable",
    "UnknownDeviceProfile",
    "UnknownModelEndpoint",
    "UserNotFound",
    "VaultUnavailable",
    "ViewerLimit",
    "WebhookSubscriptionNotFound",
]


class Unauthenticated(PhoneFleetError):
    code = "unauthenticated"


class PermissionDenied(PhoneFleetError):
    code = "permission_denied"


class NotFound(PhoneFleetError):
    code = "not_found"


class TaskNotFound(NotFound):
    code = "task_not_found"

    def __init__(self, task_id: object) -> None:
        super().__init__(f"no task {task_id}", context={"task_id": str(task_id)})


class WebhookSubscriptionNotFound(NotFound):
    code = "webhook_subscription_not_found"

    def __init__(self, subscription_id: object) -> None:
        super().__init__(f"no webhook subscription {subscription_id}", context={"subscription_id": str(subscription_id)})


class SecretNotFound(NotFound):
    code = "secret_not_found"

    def __init__(self, name: object) -> None:
        super().__init__(f"no secret named {name!r}", context={"name": str(name)})


class EvalNotFound(NotFound):
    code = "eval_not_found"

    def __init__(self, eval_id: object) -> None:
        super().__init__(f"no eval {eval_id}", context={"eval_id": str(eval_id)})


class DeviceNotFound(NotFound):
    code = "device_not_found"

    def __init__(self, device_id: object) -> None:
        super().__init__(f"no device {device_id}", context={"device_id": str(device_id)})


class SessionNotFound(NotFound):
    code = "session_not_found"

    def __init__(self, session_id: object) -> None:
        super().__init__(f"no session {session_id}", context={"session_id": str(session_id)})


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"

    def __init__(self, schedule_id: object) -> None:
        super().__init__(f"no schedule {schedule_id}", context={"schedule_id": str(schedule_id)})


class ElementNotFound(NotFound):
    code = "element_not_found"


class FileNotFound(NotFound):
    code = "file_not_found"


class StepNotFound(NotFound):
    code = "step_not_found"


class ScreenshotNotFound(NotFound):
    code = "screenshot_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class ShareLinkNotFound(NotFound):
    code = "share_link_not_found"


class Gone(PhoneFleetError):
    code = "gone"


class ShareLinkExpired(Gone):
    code = "share_link_expired"


class Conflict(PhoneFleetError):
    code = "conflict"


class InvalidTransition(Conflict):
    """A state change the lifecycle does not allow from the row's current state."""

    code = "invalid_transition"

    def __init__(self, message: str, *, current: str, requested: str) -> None:
        super().__init__(message, context={"current": current, "requested": requested})
        self.current = current
        self.requested = requested


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"


class DeviceExists(Conflict):
    code = "device_exists"


class AdbTunnelUnsupported(Conflict):
    """The session's phone has no TCP address the API can relay an ADB tunnel to (a USB handset)."""

    code = "adb_tunnel_unsupported"


class TenantExists(Conflict):
    code = "tenant_exists"


class LastAdminKey(Conflict):
    """Revoking this key would leave a tenant with no admin key (docs/security.md, "Roles")."""

    code = "last_admin_key"


class LimitReached(Conflict):
    """One more row would pass a tenant limit (the limit and its setting are in the message)."""

    code = "limit_reached"


class VaultUnavailable(Conflict):
    """The secrets vault cannot encrypt or read: no ``vault.key`` (prod), or a value made with a key
    that is neither ``vault.key`` nor one of ``vault.old_keys``."""

    code = "vault_unavailable"


class InvalidRequest(PhoneFleetError):
    code = "invalid_request"


class InvalidSchedule(InvalidRequest):
    code = "invalid_schedule"


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"


class UnknownDeviceProfile(InvalidRequest):
    """A task named a device profile that ``pool.profiles`` does not define."""

    code = "unknown_device_profile"

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none are configured (PHONEFLEET_POOL__PROFILES)"
        super().__init__(
            f"no device profile named {name!r}; known profiles: {listed}",
            context={"profile": name, "known": known},
        )
        self.name = name
        self.known = known


class UnknownModelEndpoint(InvalidRequest):
    """A task (or a schedule's task) named a model endpoint that ``model.endpoints`` does not define."""

    code = "unknown_model"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"no model endpoint named {name!r}; the endpoints you may use: {', '.join(known)}",
            context={"model": name, "known": known},
        )
        self.name = name
        self.known = known


class InvalidEval(InvalidRequest):
    """An eval naming a suite, template or model that cannot be run."""

    code = "invalid_eval"


class InputRejected(InvalidRequest):
    code = "input_rejected"


class PathNotAllowed(InvalidRequest):
    code = "path_not_allowed"


class ApkRejected(InvalidRequest):
    code = "apk_rejected"


class InvalidTrajectory(InvalidRequest):
    """A file or folder that is not a trajectory (the API's zip or ``phonefleet run``'s folder)."""

    code = "invalid_trajectory"


class BadHttpRequest(PhoneFleetError):
    """Refused before any route reads the request: its framing, headers or body cannot be used."""

    code = "bad_request"


class InvalidJson(BadHttpRequest):
    code = "invalid_json"


class PayloadTooLarge(BadHttpRequest):
    code = "payload_too_large"


class HeadersTooLarge(BadHttpRequest):
    code = "headers_too_large"


class BodyTimeout(BadHttpRequest):
    code = "body_timeout"


class RateLimited(PhoneFleetError):
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after_s: float, context: dict[str, Any] | None = None) -> None:
        super().__init__(message, context={**(context or {}), "retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


class QuotaExceeded(RateLimited):
    """Work that would pass one of its tenant's limits (the message names the limit first)."""

    code = "quota_exceeded"


class Unavailable(PhoneFleetError):
    code = "unavailable"
    retryable = True


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"


class BrokerUnavailable(Unavailable):
    code = "broker_unavailable"


class ModelServerUnavailable(Unavailable):
    code = "model_unavailable"


class DockerEngineUnavailable(Unavailable):
    """The API could not reach (or use) the redroid pool's Docker engine for an export or import."""

    code = "docker_engine_unavailable"


class NoLiveDevice(Conflict):
    """Live view of a task or session that holds no phone right now (queued, ended, closed)."""

    code = "no_live_device"


class InvalidSdp(InvalidRequest):
    code = "invalid_sdp"


class ViewerLimit(Unavailable):
    """The phone already streams to ``webrtc.max_viewers_per_device`` viewers."""

    code = "viewer_limit"


class PersonalPhoneNotFound(NotFound):
    code = "personal_phone_not_found"

    def __init__(self, personal_phone_id: object) -> None:
        super().__init__(
            f"no personal phone {personal_phone_id}", context={"personal_phone_id": str(personal_phone_id)}
        )


class PersonalPhoneInUse(Conflict):
    code = "personal_phone_in_use"


class PersonalPhoneQuota(Conflict):
    code = "personal_phone_quota"


class PersonalPhonesUnsupported(Conflict):
    code = "personal_phones_unsupported"


class StoredFileUnreadable(Conflict):
    """A stored screenshot sealed with another key than ``storage.encryption_key`` (or none is set)."""

    code = "stored_file_unreadable"


class TenantBusy(Conflict):
    """Deleting a tenant that still has unfinished tasks, open sessions or busy personal phones."""

    code = "tenant_busy"


class PersonalPhoneArchiveForeign(InvalidRequest):
    """An export made with another deployment's ``personal_phones.export_key``."""

    code = "personal_phone_archive_foreign"


class PersonalPhoneArchiveDamaged(InvalidRequest):
    """Not an export, or one altered or cut short since it was made."""

    code = "personal_phone_archive_damaged"


class PersonalPhoneArchiveUnsafe(InvalidRequest):
    """An archive whose members would land outside the phone's directory (absolute paths, ``..``,
    links, devices)."""

    code = "personal_phone_archive_unsafe"


class ConfirmationMismatch(InvalidRequest):
    code = "confirmation_mismatch"


class InvalidAnswer(InvalidRequest):
    """A reply that is not one of the choices the question offered (a task chain's failed subgoal:
    retry, skip or cancel)."""

    code = "invalid_answer"
