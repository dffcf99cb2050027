"""``create_app(settings)``: the FastAPI app of REST API v1 (no module-level app; see ``docs/api.md``)."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from device_pool.pool import LeaseStore, signal_for
from orchestrator.api import (
    adb_tunnel,
    api_keys,
    audit,
    auth,
    device_api,
    devices,
    evals,
    events,
    health,
    live,
    metrics,
    model_endpoints,
    recordings,
    schedules,
    secrets,
    sessions,
    share_links,
    tasks,
    tenant_registry,
    usage,
    webhook_subscriptions,
    webhooks,
)
from orchestrator.api import personal_phones as personal_phones_api
from orchestrator.api import tenants as tenants_api
from orchestrator.api.dashboard import Dashboard
from orchestrator.api.deps import Services
from orchestrator.api.edges import MAX_BODY_BYTES, HttpEdges, Upload, document_body_errors
from orchestrator.api.errors import install_error_handlers
from orchestrator.api.request_id import install_request_id
from orchestrator.api.submission import TaskSubmission
from orchestrator.db import make_engine, make_sessionmaker, warm_pool
from orchestrator.db.database import Database
from orchestrator.encryption import screenshot_cipher
from orchestrator.live import LiveHub
from orchestrator.mcp_server.http import McpEndpoint
from orchestrator.notifier import EventSignal
from orchestrator.queue import TaskQueue
from orchestrator.services.api_keys import ApiKeyService
from orchestrator.services.auth import ApiKeyVerifier
from orchestrator.services.device_api import DeviceApi
from orchestrator.services.devices import DeviceService
from orchestrator.services.evals import EvalService
from orchestrator.services.events import EventHub
from orchestrator.services.health import HealthService
from orchestrator.services.logins import Logins
from orchestrator.services.metrics import MetricsService
from orchestrator.services.personal_phones import PersonalPhoneService
from orchestrator.services.phone_archives import PhoneArchives, export_key, personal_volumes
from orchestrator.services.ratelimit import make_rate_limiter
from orchestrator.services.recordings import SessionRecorders
from orchestrator.services.schedules import ScheduleService
from orchestrator.services.sessions import SessionService
from orchestrator.services.steps import StepService
from orchestrator.services.tasks import TaskService
from orchestrator.services.tenants import TenantService
from orchestrator.services.vault import VaultService
from orchestrator.services.webhook_subscriptions import SubscriptionService
from orchestrator.services.webhook_targets import TargetPolicy
from orchestrator.services.webhooks import WebhookService
from orchestrator.settings import Settings, load_settings
from orchestrator.vault_cipher import VaultCipher

__all__ = ["MAX_BODY_BYTES", "create_app", "create_app_from_env"]

logger = logging.getLogger(__name__)

_DESCRIPTION = """PhoneFleet runs phone-use AI agents on a fleet of cloud Android phones.

Authenticate with `Authorization: Bearer pf_<prefix>_<secret>`, or (the dashboard) with the
`pf_session` cookie from `POST /api/v1/auth/login` plus `X-CSRF-Token` on unsafe methods. Errors are
`{"error": code, "message": text}`; lists are paged with an opaque `cursor`. See docs/api.md.
"""


def _freeze_startup_heap() -> None:
    """Move every object alive now (modules, classes, the app, its services) out of the collector's reach.

    Importing FastAPI, SQLAlchemy, aiortc, PyAV and numpy leaves a heap of several hundred thousand
    container objects that live as long as the process. Each full (generation 2) collection walked
    them all: 60–145 ms pauses, a few a minute at 300 submissions/s, and they were the whole p99
    (measured with a gc.callbacks probe in ``bench/bench_submit.py --timeline``). Frozen objects
    are never collected, which costs nothing here since they would live until exit anyway.
    Garbage collected first is not frozen.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings, *, queue: TaskQueue | None = None, freeze_heap: bool = False) -> FastAPI:
    """The API for ``settings``; the lifespan opens the database engine and broker producer and closes them.

    ``queue`` replaces the producer built from settings (tests pass one with a Redis key prefix);
    the app then leaves closing it to the caller. ``freeze_heap``: the app is the whole process
    (``phonefleet api``), so once started, everything alive is exempt from garbage collection
    (``_freeze_startup_heap``); not for an app among others in one process, such as a test's.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        db = Database(make_sessionmaker(engine))
        producer = queue or TaskQueue.from_settings(settings)
        verifier = ApiKeyVerifier(db)
        # Redis buckets when redis_url is set: one limit across every API process.
        limiter = make_rate_limiter(settings)
        # Connections the first requests would otherwise open while clients wait; each gives up
        # within 1-2 s when its server is down (the requests and /readyz then report it).
        await asyncio.gather(warm_pool(engine), producer.warm(), limiter.warm())
        # Sessions lease phones here; Redis wake-ups (when set) reach this waiter from the pool manager.
        signal = signal_for(settings.redis_url)
        leases = LeaseStore.for_engine(engine, signal=signal)
        # "Events committed": wakes this process's events hub at once, and (Redis) other processes'.
        events_signal = EventSignal(settings.redis_url)
        hub = EventHub(db, events_signal)
        health = HealthService(
            db, producer, model_url=settings.model.base_url,
            model_api_key=settings.model.api_key.get_secret_value() or None,
        )  # fmt: skip
        targets = TargetPolicy.from_settings(settings)
        cipher = screenshot_cipher(settings)  # seals step screenshots when storage.encryption_key is set
        personal_phones = PersonalPhoneService(
            db, provider=settings.pool.provider, max_per_user=settings.personal_phones.max_per_user,
            profiles=settings.pool.profiles, quotas=settings.quotas,
        )  # fmt: skip
        archives = PhoneArchives(
            personal_phones, data_dir=settings.personal_phones.data_dir, key=export_key(settings),
            max_bytes=settings.personal_phones.max_archive_bytes, volumes=personal_volumes(settings),
        )  # fmt: skip
        app.state.services = Services(
            db=db,
            queue=producer,
            verifier=verifier,
            tasks=TaskService(
                db,
                producer,
                limiter,
                profiles=settings.pool.profiles,
                notifier=events_signal,
                webhook_targets=targets,
                personal_phones=personal_phones,
                default_max_tries=settings.tasks.default_max_tries,
                models=settings.model,
            ),
            steps=StepService(db, settings.data_dir, cipher=cipher),
            devices=DeviceService(db, leases.signal),
            api_keys=ApiKeyService(db, verifier),
            health=health,
            logins=Logins.from_settings(settings, db, verifier),
            metrics=MetricsService(db, health=health, quotas=settings.quotas),
            sessions=SessionService(
                db,
                leases,
                profiles=settings.pool.profiles,
                personal_phones=personal_phones,
                wake_timeout_s=settings.personal_phones.wake_timeout_s,
                quotas=settings.quotas,
                max_lifetime_s=settings.sessions.max_lifetime_s,
                recorders=(recorders := SessionRecorders(db, settings)),  # each session's video
            ),
            personal_phones=personal_phones,
            phone_archives=archives,
            events=hub,
            webhooks=WebhookService(db),
            schedules=ScheduleService(
                db,
                settings.schedules,
                profiles=settings.pool.profiles,
                webhook_targets=targets,
                personal_phones=personal_phones,
                models=settings.model,
            ),
            vault=VaultService(db, VaultCipher.from_settings(settings), max_per_tenant=settings.vault.max_per_tenant),
            subscriptions=SubscriptionService(
                db, webhook_targets=targets, max_per_tenant=settings.webhooks.max_subscriptions_per_tenant
            ),
            tenants=TenantService(
                db,
                settings.data_dir,
                default_retention_days=settings.storage.retention_days,
                verifier=verifier,
            ),
            evals=EvalService(db, producer, notifier=events_signal, models=settings.model),
        )
        # The device API reaches phones through the live view's adb server (the pool's).
        app.state.device_api = DeviceApi(
            app.state.services.sessions,
            adb_host=settings.webrtc.adb_host,
            adb_port=settings.webrtc.adb_port,
            file_roots=settings.device_api.file_roots,
            file_max_bytes=settings.device_api.file_max_bytes,
        )
        app.state.live = live = LiveHub(
            settings.webrtc, db, data_dir=settings.data_dir, notifier=events_signal, cipher=cipher,
            session_activity=app.state.services.sessions.touch,  # a viewer's activity keeps its session alive
            redis_url=settings.redis_url,  # one capture per phone across API processes (live/relay.py)
        )  # WebRTC viewers (orchestrator/live)
        if freeze_heap:
            _freeze_startup_heap()
        try:
            async with mcp_endpoint.running():
                yield
        finally:
            await live.close()  # peer connections and phone captures end with the process
            await recorders.close()  # sessions' recordings finished, their files complete
            await hub.close()  # open event sockets close with 1001
            await events_signal.close()
            if queue is None:
                await producer.aclose()
            await limiter.close()
            await leases.close()
            if archives.volumes is not None:
                archives.volumes.close()
            await engine.dispose()

    app = FastAPI(title="PhoneFleet API", version="1.0", description=_DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    install_error_handlers(app)
    document_body_errors(app)
    # MCP over streamable HTTP at /mcp: its tools call this app's REST API in process (docs/mcp.md).
    mcp_endpoint = McpEndpoint(app)
    app.router.routes.append(mcp_endpoint.route)
    routers = (tasks, schedules, sessions, device_api, personal_phones_api, devices, api_keys, audit, auth, health,
               metrics, events, webhooks, webhook_subscriptions, evals, live, adb_tunnel, tenants_api,
               tenant_registry, usage, model_endpoints, secrets, share_links, recordings)  # fmt: skip
    for module in routers:
        app.include_router(module.router)
    app.include_router(api_keys.users_router)
    app.add_middleware(Dashboard)  # the web dashboard: web/ at / and /app/… (api/dashboard.py)
    if settings.api.submit_fast_path:
        app.add_middleware(TaskSubmission)  # the submission hot path (api/submission.py)
    # In front of both: header and body limits, the body's deadline (api/edges.py).
    uploads = (
        # A file for a session's phone (api/device_api.py).
        Upload("PUT", r"/api/v1/sessions/[^/]+/files/?", settings.device_api.file_max_bytes,
               settings.device_api.file_body_timeout_s, "the file (device_api.file_max_bytes)"),
        # An APK to install on a session's phone (api/device_api.py).
        Upload("POST", r"/api/v1/sessions/[^/]+/apps/?", settings.device_api.apk_max_bytes,
               settings.device_api.file_body_timeout_s, "the APK (device_api.apk_max_bytes)"),
        # A personal phone's archive: 64 MB at 1 MB/s.
        Upload("POST", re.escape(personal_phones_api.IMPORT_PATH), settings.personal_phones.max_archive_bytes,
               60.0, "the archive (personal_phones.max_archive_bytes)"),
    )  # fmt: skip
    app.add_middleware(HttpEdges, body_limit=MAX_BODY_BYTES, uploads=uploads)
    install_request_id(
        app
    )  # outermost: X-Request-ID on every answer, the fast path's too (api/request_id.py)
    return app


def create_app_from_env() -> FastAPI:
    """The app with settings from the environment: uvicorn's factory when it runs several workers."""
    return create_app(load_settings(), freeze_heap=True)
