"""Request and response bodies of REST API v1 (with the examples OpenAPI shows), one module per domain.

``common`` (pages, errors, readiness), ``tasks``, ``steps``, ``webhooks``, ``devices``, ``sessions``,
``keys`` and ``logins``; every body is also importable from here.
"""

from orchestrator.api.schemas.common import ErrorOut, PageOut, ReadinessOut
from orchestrator.api.schemas.devices import DeviceCreate, DeviceLeaseOut, DeviceOut
from orchestrator.api.schemas.keys import ApiKeyCreate, ApiKeyOut, IssuedKeyOut
from orchestrator.api.schemas.logins import LoginIn, LoginOut, WhoAmIOut
from orchestrator.api.schemas.sessions import AdbOut, SessionCreate, SessionDeviceOut, SessionOut
from orchestrator.api.schemas.steps import StepOut
from orchestrator.api.schemas.tasks import ConfirmIn, HandbackIn, ReplyIn, TakeoverIn, TaskCreate, TaskOut
from orchestrator.api.schemas.webhooks import (
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionSecretOut,
    WebhookDeliveryOut,
)

__all__ = [
    "AdbOut",
    "ApiKeyCreate",
    "ApiKeyOut",
    "ConfirmIn",
    "DeviceCreate",
    "DeviceLeaseOut",
    "DeviceOut",
    "ErrorOut",
    "HandbackIn",
    "IssuedKeyOut",
    "LoginIn",
    "LoginOut",
    "PageOut",
    "ReadinessOut",
    "ReplyIn",
    "SessionCreate",
    "SessionDeviceOut",
    "SessionOut",
    "StepOut",
    "SubscriptionCreate",
    "SubscriptionOut",
    "SubscriptionSecretOut",
    "TakeoverIn",
    "TaskCreate",
    "TaskOut",
    "WebhookDeliveryOut",
    "WhoAmIOut",
]
