"""Domain services the API routes (and CLI commands) call: task rules, devices, keys, readiness."""

from orchestrator.services.api_keys import ApiKeyService
from orchestrator.services.auth import ApiKeyVerifier, IssuedKey, Principal, issue_api_key, revoke_api_key
from orchestrator.services.database import Database
from orchestrator.services.devices import DeviceService, DeviceView
from orchestrator.services.events import EventHub, EventMessage
from orchestrator.services.health import HealthService, Readiness
from orchestrator.services.notifier import EventSignal
from orchestrator.services.pagination import Page
from orchestrator.services.ratelimit import RateLimiter, RedisTokenBuckets, TokenBuckets
from orchestrator.services.specs import TaskSpec
from orchestrator.services.steps import StepService
from orchestrator.services.tasks import CANCEL_REQUESTED, TaskService
from orchestrator.services.webhooks import WebhookService

__all__ = [
    "CANCEL_REQUESTED",
    "ApiKeyService",
    "ApiKeyVerifier",
    "Database",
    "DeviceService",
    "DeviceView",
    "EventHub",
    "EventMessage",
    "EventSignal",
    "HealthService",
    "IssuedKey",
    "Page",
    "Principal",
    "RateLimiter",
    "Readiness",
    "RedisTokenBuckets",
    "StepService",
    "TaskService",
    "TaskSpec",
    "TokenBuckets",
    "WebhookService",
    "issue_api_key",
    "revoke_api_key",
]
