"""FastAPI dependencies: settings, the caller (API key or login cookie), roles, and the services routes call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.db.database import Database
from orchestrator.errors import PermissionDenied
from orchestrator.queue import TaskQueue
from orchestrator.services.api_keys import ApiKeyService
from orchestrator.services.audit import AuditService
from orchestrator.services.auth import ApiKeyVerifier, Principal
from orchestrator.services.devices import DeviceService
from orchestrator.services.evals import EvalService
from orchestrator.services.events import EventHub
from orchestrator.services.health import HealthService
from orchestrator.services.logins import CSRF_HEADER, LOGIN_COOKIE, Login, Logins
from orchestrator.services.metrics import MetricsService
from orchestrator.services.personal_phones import PersonalPhoneService
from orchestrator.services.phone_archives import PhoneArchives
from orchestrator.services.schedules import ScheduleService
from orchestrator.services.sessions import SessionService
from orchestrator.services.steps import StepService
from orchestrator.services.tasks import TaskService
from orchestrator.services.tenants import TenantService
from orchestrator.services.vault import VaultService
from orchestrator.services.webhook_subscriptions import SubscriptionService
from orchestrator.services.webhooks import WebhookService
from orchestrator.settings import Settings
from orchestrator.vault_cipher import VaultCipher

__all__ = [
    "AdminOnly",
    "ApiKeyServiceDep",
    "AuditServiceDep",
    "CurrentPrincipal",
    "DeviceServiceDep",
    "EvalServiceDep",
    "HealthServiceDep",
    "LoginsDep",
    "MetricsServiceDep",
    "OperatorOnly",
    "PersonalPhoneServiceDep",
    "PhoneArchivesDep",
    "ScheduleServiceDep",
    "Services",
    "SessionServiceDep",
    "SettingsDep",
    "StepServiceDep",
    "SubscriptionServiceDep",
    "TaskServiceDep",
    "VaultServiceDep",
    "WebhookServiceDep",
    "login_of",
    "websocket_principal",
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
    logins: Logins
    metrics: MetricsService
    events: EventHub
    webhooks: WebhookService
    sessions: SessionService
    schedules: ScheduleService
    personal_phones: PersonalPhoneService
    phone_archives: PhoneArchives
    subscriptions: SubscriptionService
    tenants: TenantService
    vault: VaultService | None = None  # None: made from db and the settings on first use (tests that build Services)
    evals: EvalService | None = None  # None: made from db and queue on first use (tests that build Services)


async def get_settings(request: Request) -> Settings:
    """The settings ``create_app`` was given (tests may override this dependency)."""
    return request.app.state.settings


def _services(request: Request) -> Services:
    return request.app.state.services


SettingsDep = Annotated[Settings, Depends(get_settings)]

# Declared for OpenAPI's "Authorize" button; the header is parsed by the verifier for clearer errors.
_bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="`Authorization: Bearer pf_<prefix>_<secret>`"
)


# The OpenAPI scheme keeps its old name, "Session" (a client generated from it may refer to it).
_login_cookie = APIKeyCookie(
    name=LOGIN_COOKIE, auto_error=False, scheme_name="Session",
    description="The dashboard's login cookie (POST /api/v1/auth/login); unsafe methods also need "
    f"`{CSRF_HEADER}`",
)  # fmt: skip


async def authenticate(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _cookie: Annotated[str | None, Depends(_login_cookie)],
) -> Principal:
    """The caller, by ``Authorization: Bearer`` or else the ``pf_session`` cookie (Bearer wins when both
    are sent). Raises ``Unauthenticated`` (401) for a missing, malformed, unknown or revoked key or a
    bad/expired login, ``CsrfRejected`` (403) for a cookie-authenticated unsafe request without the
    login's ``X-CSRF-Token``."""
    services = _services(request)
    authorization = request.headers.get("authorization")
    if authorization is not None or LOGIN_COOKIE not in request.cookies:
        return await services.verifier.verify(authorization)
    principal, login = await services.logins.authenticate(
        request.method, request.cookies, request.headers.get(CSRF_HEADER)
    )
    request.state.login = login
    return principal


async def websocket_principal(websocket: WebSocket) -> Principal | None:
    """The caller of a WebSocket by its handshake, or None when it carries no credentials (the events
    socket then expects a first ``{"type": "auth", …}`` message). Raises ``Unauthenticated`` (bad
    key or login), ``PermissionDenied`` (a cookie from another origin's page).

    ``Authorization: Bearer`` (non-browser clients) wins; else the dashboard's ``pf_session`` cookie.
    A handshake is a GET, so there is no CSRF token: a browser sends the cookie on a handshake that
    another site's page opens, but it also sends that page's ``Origin``, which must name this host.
    """
    authorization = websocket.headers.get("authorization")
    services = websocket.app.state.services
    if authorization is not None:
        return await services.verifier.verify(authorization)
    if LOGIN_COOKIE not in websocket.cookies:
        return None
    _check_same_origin(websocket.headers.get("origin"), websocket.headers.get("host"))
    principal, _login = await services.logins.principal_from_cookies(websocket.cookies)
    return principal


_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _check_same_origin(origin: str | None, host: str | None) -> None:
    """``Origin`` (scheme://host[:port]) must name the ``Host`` the handshake was sent to (default
    ports aside). Browsers always send Origin on a WebSocket handshake; a cookie without one is refused."""
    if not origin or not host:
        raise PermissionDenied(f"a WebSocket authenticated by the {LOGIN_COOKIE} cookie needs an Origin header")
    scheme, _, netloc = origin.strip().lower().partition("://")
    if scheme in _DEFAULT_PORTS:
        netloc = netloc.removesuffix(f":{_DEFAULT_PORTS[scheme]}")
    # Host carries no scheme (and behind a TLS proxy the socket's own scheme is not the page's).
    host = host.strip().lower().removesuffix(":80").removesuffix(":443")
    if netloc != host:
        raise PermissionDenied(
            f"cross-origin WebSocket refused: Origin {origin!r} is not this host ({host}); "
            f"the {LOGIN_COOKIE} cookie opens sockets only from the dashboard's own pages"
        )


def login_of(request: Request) -> Login | None:
    """The login that authenticated this request (after ``authenticate``), None for a Bearer key."""
    return getattr(request.state, "login", None)


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: CurrentPrincipal) -> Principal:
    """Admins only; raises ``PermissionDenied`` (403)."""
    if not principal.is_admin:
        raise PermissionDenied("this route needs an admin API key")
    return principal


AdminOnly = Depends(require_admin)


async def require_operator(principal: CurrentPrincipal) -> Principal:
    """The deployment's operator only; raises ``PermissionDenied`` (403). A tenant's admin is refused:
    the fleet's devices are shared by every tenant (docs/security.md, "Roles")."""
    if not principal.is_operator:
        raise PermissionDenied("this route needs the operator's API key: a tenant's admin cannot change the shared fleet")
    return principal


OperatorOnly = Depends(require_operator)


# The service getters are async: FastAPI runs a plain-def dependency on a worker thread, a thread
# hop per request for a dictionary lookup.


async def _task_service(request: Request) -> TaskService:
    return _services(request).tasks


async def _step_service(request: Request) -> StepService:
    return _services(request).steps


async def _device_service(request: Request) -> DeviceService:
    return _services(request).devices


async def _api_key_service(request: Request) -> ApiKeyService:
    return _services(request).api_keys


async def _health_service(request: Request) -> HealthService:
    return _services(request).health


async def _logins(request: Request) -> Logins:
    return _services(request).logins


async def _metrics_service(request: Request) -> MetricsService:
    return _services(request).metrics


TaskServiceDep = Annotated[TaskService, Depends(_task_service)]
StepServiceDep = Annotated[StepService, Depends(_step_service)]
DeviceServiceDep = Annotated[DeviceService, Depends(_device_service)]
ApiKeyServiceDep = Annotated[ApiKeyService, Depends(_api_key_service)]
HealthServiceDep = Annotated[HealthService, Depends(_health_service)]
LoginsDep = Annotated[Logins, Depends(_logins)]
MetricsServiceDep = Annotated[MetricsService, Depends(_metrics_service)]


async def _webhook_service(request: Request) -> WebhookService:
    return _services(request).webhooks


WebhookServiceDep = Annotated[WebhookService, Depends(_webhook_service)]


async def _subscription_service(request: Request) -> SubscriptionService:
    return _services(request).subscriptions


SubscriptionServiceDep = Annotated[SubscriptionService, Depends(_subscription_service)]


async def _vault_service(request: Request) -> VaultService:
    services = _services(request)
    if services.vault is None:
        services.vault = VaultService(services.db, VaultCipher.from_settings(request.app.state.settings))
    return services.vault


VaultServiceDep = Annotated[VaultService, Depends(_vault_service)]


async def _eval_service(request: Request) -> EvalService:
    services = _services(request)
    return services.evals or EvalService(services.db, services.queue)


EvalServiceDep = Annotated[EvalService, Depends(_eval_service)]


async def _session_service(request: Request) -> SessionService:
    return _services(request).sessions


SessionServiceDep = Annotated[SessionService, Depends(_session_service)]


async def _schedule_service(request: Request) -> ScheduleService:
    return _services(request).schedules


ScheduleServiceDep = Annotated[ScheduleService, Depends(_schedule_service)]


async def _personal_phone_service(request: Request) -> PersonalPhoneService:
    return _services(request).personal_phones


PersonalPhoneServiceDep = Annotated[PersonalPhoneService, Depends(_personal_phone_service)]


async def _phone_archives(request: Request) -> PhoneArchives:
    return _services(request).phone_archives


PhoneArchivesDep = Annotated[PhoneArchives, Depends(_phone_archives)]


async def _tenant_service(request: Request) -> TenantService:
    return _services(request).tenants


TenantServiceDep = Annotated[TenantService, Depends(_tenant_service)]


async def _audit_service(request: Request) -> AuditService:
    return AuditService(_services(request).db)  # stateless: one per request, no field in Services


AuditServiceDep = Annotated[AuditService, Depends(_audit_service)]
