"""FastAPI dependencies: settings, the caller (API key auth), roles, and the services routes call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.errors import PermissionDenied
from orchestrator.queue import TaskQueue
from orchestrator.services import (
    ApiKeyService,
    ApiKeyVerifier,
    Database,
    DeviceService,
    HealthService,
    Principal,
    StepService,
    TaskService,
)
from orchestrator.settings import Settings

__all__ = [
    "AdminOnly",
    "ApiKeyServiceDep",
    "CurrentPrincipal",
    "DeviceServiceDep",
    "HealthServiceDep",
    "Services",
    "SettingsDep",
    "StepServiceDep",
    "TaskServiceDep",
]


@dataclass(frozen=True)
class Services:
    """What the lifespan builds once per process and routes share."""

    db: Database
    queue: TaskQueue
    verifier: ApiKeyVerifier
    tasks: TaskService
    steps: StepService
    devices: DeviceService
    api_keys: ApiKeyService
    health: HealthService


def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given (tests may override this dependency)."""
    return request.app.state.settings


def _services(request: Request) -> Services:
    return request.app.state.services


SettingsDep = Annotated[Settings, Depends(get_settings)]

# Declared for OpenAPI's "Authorize" button; the header is parsed by the verifier for clearer errors.
_bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="`Authorization: Bearer pf_<prefix>_<secret>`"
)


async def authenticate(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller; raises ``Unauthenticated`` (401) for a missing, malformed, unknown or revoked key."""
    return await _services(request).verifier.verify(request.headers.get("authorization"))


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: CurrentPrincipal) -> Principal:
    """Admins only; raises ``PermissionDenied`` (403)."""
    if not principal.is_admin:
        raise PermissionDenied("this route needs an admin API key")
    return principal


AdminOnly = Depends(require_admin)


def _task_service(request: Request) -> TaskService:
    return _services(request).tasks


def _step_service(request: Request) -> StepService:
    return _services(request).steps


def _device_service(request: Request) -> DeviceService:
    return _services(request).devices


def _api_key_service(request: Request) -> ApiKeyService:
    return _services(request).api_keys


def _health_service(request: Request) -> HealthService:
    return _services(request).health


TaskServiceDep = Annotated[TaskService, Depends(_task_service)]
StepServiceDep = Annotated[StepService, Depends(_step_service)]
DeviceServiceDep = Annotated[DeviceService, Depends(_device_service)]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(_api_key_service)]
HealthServiceDep = Annotated[HealthService, Depends(_health_service)]
