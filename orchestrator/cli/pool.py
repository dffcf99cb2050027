"""``phonefleet pool``: the pool manager for one provider: register, reset, health-check and keep phones warm.

The database must be migrated (``phonefleet migrate``). The provider comes from ``pool.provider``:
``sim`` runs ``pool.count`` virtual phones with data under ``{data_dir}/phones``; ``static_adb``
reads its phones from ``--devices-file`` (JSON: a ``StaticAdbConfig`` object or a list of
``StaticDevice`` entries); ``redroid`` runs redroid containers on a Docker engine as
``pool.redroid`` says (at least ``pool.count``, at most ``pool.redroid.max_count``). With
``redis_url`` set, wake-ups reach lease waiters in other processes.
The adb server on ``--adb-port`` is part of the pool (``device_pool.pool.adb_supervisor``): adopted
if one answers, else started as the pool's child; probed every second, restarted within 10 s when it
dies or wedges, its phones reconnected; stopped on exit if the pool started it. A wedged server the
pool did not start is killed only with ``--adb-server-owned``.
Beside the manager runs the task sweeper (``orchestrator.services.sweeper``): every ``--sweep-interval``
seconds it re-enqueues tasks whose message was lost, and every fifth of ``pool.worker_lost_s`` it
fails over tasks whose worker died (ending their leases for a reset); and
the webhook relay and deliverer (``orchestrator.services.webhooks``), which POST task events to
their tasks' ``webhook_url`` (``webhooks.*`` settings); and the scheduler
(``orchestrator.services.scheduler``), which makes schedules' runs when they are due
(``schedules.*`` settings); and the retention reaper (``orchestrator.services.retention``), which
removes data past its tenant's retention every ``storage.reap_interval_s`` and the last rows of
deleted tenants. All four are safe to run in several pool processes at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.cli.refusal import refuse
from orchestrator.cli.signals import serve_until_signal

logger = logging.getLogger(__name__)

# After SIGTERM: how long the manager, sweeper and webhooks get to end their current pass, and a
# provider to remove its phones, before they are cancelled (SIGTERM → exit within 10 s).
STOP_WAIT_S = 3.0
CLOSE_WAIT_S = 4.0
# Removing redroid containers takes Docker longer; the deployments' grace periods (120 s) allow it.
REDROID_CLOSE_WAIT_S = 90.0
ADB_CLOSE_WAIT_S = 2.0  # the adb server the pool started: SIGTERM, or SIGKILL for a wedged one


async def _ended(tasks: list[asyncio.Task[None]]) -> None:
    """Wait up to STOP_WAIT_S for ``tasks`` to end; cancel (and log) those still running."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=STOP_WAIT_S)
    for task in pending:
        logger.warning("%s did not stop within %.0f s of the signal; cancelled", task.get_name(), STOP_WAIT_S)
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1.0)
    for task in tasks:  # as awaiting each would: the first failure is the command's
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _bounded(closing: Any, what: str, timeout_s: float = CLOSE_WAIT_S) -> None:
    """Await ``closing`` for at most ``timeout_s``; past it, log what may be left and go on."""
    try:
        await asyncio.wait_for(closing, timeout_s)
    except TimeoutError:
        logger.error("%s took longer than %.0f s; exiting without waiting for it", what, timeout_s)


def _options(settings: Any, args: argparse.Namespace, max_devices: int) -> Any:
    """What the providers need, from the settings and the command line."""
    from device_pool.providers.registry import ProviderOptions

    pool = settings.pool
    return ProviderOptions(
        adb_port=args.adb_port,
        count=pool.count,
        max_count=max(max_devices, pool.count, 1),
        base_port=pool.base_port,
        data_root=settings.data_dir / "phones",
        personal_root=settings.personal_phones.data_dir,
        devices_file=None if args.devices_file is None else Path(args.devices_file),
        redroid=pool.redroid.model_dump(),
    )


async def _serve(settings: Any, args: argparse.Namespace) -> None:
    from device_pool.driver import AdbServerClient
    from device_pool.pool import AdbServerSupervisor, LeaseStore, PoolManager, signal_for
    from device_pool.providers.registered import REGISTERED
    from device_pool.providers.registry import build_provider
    from orchestrator.db import make_engine, make_sessionmaker
    from orchestrator.db.database import Database
    from orchestrator.notifier import EventSignal
    from orchestrator.queue import TaskQueue
    from orchestrator.services.retention import RetentionReaper
    from orchestrator.services.scheduler import Scheduler
    from orchestrator.services.sessions import SessionService
    from orchestrator.services.sweeper import TaskSweeper
    from orchestrator.services.webhooks import serve_webhooks

    pool = settings.pool
    redroid = pool.provider == "redroid"
    default_max = pool.redroid.max_count if redroid else max(pool.count, pool.min_idle)
    max_devices = args.max_devices or default_max
    options = _options(settings, args, max_devices)
    built = build_provider(pool.provider, options)
    provider, recreate = built.provider, built.replaceable
    # A redroid reset is a container boot: the manager's per-operation deadline must outlast it.
    op_timeout_s = max(120.0, pool.redroid.boot_timeout_s + 60) if redroid else 120.0
    engine = make_engine(settings.database_url)
    signal = signal_for(settings.redis_url)
    store = LeaseStore.for_engine(engine, signal=signal)
    # Phones an admin registered (POST /api/v1/devices, provider "static"), beside the provider's
    # own: connected, reset (HOME) and health-checked from their rows; never created or replaced.
    registered = build_provider(REGISTERED, replace(options, store=store)).provider
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    adb = AdbServerSupervisor(
        AdbServerClient(port=args.adb_port),
        providers=[provider, registered],
        owned=args.adb_server_owned,
        log_path=settings.data_dir / f"adb-server-{args.adb_port}.log",
    )
    manager = PoolManager(
        store,
        provider,
        min_idle=settings.pool.min_idle,
        max_devices=max_devices,
        health_interval_s=args.health_interval,
        # Reaping finer than a quarter of the TTL would only cost queries.
        reap_interval_s=min(args.reap_interval, settings.pool.lease_ttl_s / 4),
        recreate_unhealthy=recreate,
        op_timeout_s=op_timeout_s,
        adb_server=adb,
        personal_idle_stop_s=settings.personal_phones.idle_stop_s,
    )
    registered_manager = PoolManager(
        store, registered, min_idle=0, max_devices=0, health_interval_s=args.health_interval,
        reap_interval_s=min(args.reap_interval, settings.pool.lease_ttl_s / 4), recreate_unhealthy=False,
        adb_server=adb,
    )  # fmt: skip
    queue = TaskQueue.from_settings(settings)
    db = Database(make_sessionmaker(engine))
    # Stale like the worker's claim rule: a heartbeat older than pool.worker_lost_s means its worker
    # is lost (its lease is ended for a reset). It also expires sessions nobody kept alive.
    sessions = SessionService(db, store, profiles=settings.pool.profiles)
    sweeper = TaskSweeper(
        db, queue, stale_after_s=settings.pool.worker_lost_s, max_attempts=settings.tasks.max_infra_attempts,
        sessions=sessions, signal=signal, quotas=settings.quotas,
    )  # fmt: skip
    events_signal = EventSignal(settings.redis_url)  # wakes event readers after a run is made
    scheduler = Scheduler(db, queue, settings.schedules, notifier=events_signal, name=f"pool-{os.getpid()}")
    # Data past its tenant's retention (storage.retention_days, tenants.retention_days), and the last
    # rows of deleted tenants once this manager removed their personal phones' data.
    reaper = RetentionReaper(
        db, settings.data_dir, default_days=settings.storage.retention_days, batch=settings.storage.reap_batch
    )
    sweep_stop = asyncio.Event()
    runner: asyncio.Task[None] | None = None
    registered_runner: asyncio.Task[None] | None = None
    supervising: asyncio.Task[None] | None = None
    sweeping: asyncio.Task[None] | None = None
    webhooks: asyncio.Task[None] | None = None
    scheduling: asyncio.Task[None] | None = None
    reaping: asyncio.Task[None] | None = None

    async def start() -> None:
        nonlocal runner, registered_runner, supervising, sweeping, webhooks, scheduling, reaping
        await adb.start()
        supervising = asyncio.create_task(adb.run(), name="adb-server-supervisor")
        specs = await provider.start()
        rows = await manager.sync_devices()
        logger.info(
            "pool manager started",
            extra={"provider": provider.name, "phones": len(specs), "devices": len(rows)},
        )
        await registered.start()
        runner = asyncio.create_task(manager.run(), name="pool-manager")
        registered_runner = asyncio.create_task(registered_manager.run(), name="registered-pool-manager")
        # Lost workers are looked for every fifth of worker_lost_s: a re-claim within about 1.2 × it.
        lost_every = settings.pool.worker_lost_s / 5
        sweeping = asyncio.create_task(
            sweeper.run(args.sweep_interval, sweep_stop, lost_interval_s=lost_every), name="task-sweeper"
        )
        # Events → webhook_deliveries → signed POSTs; safe to run in several pool processes at once.
        webhooks = asyncio.create_task(
            serve_webhooks(settings, db, dialect=engine.dialect.name, stop=sweep_stop), name="webhooks"
        )
        # Schedules' runs; one claim per due time in the database, so several pools may run it.
        scheduling = asyncio.create_task(scheduler.run(sweep_stop), name="scheduler")
        reaping = asyncio.create_task(
            reaper.run(settings.storage.reap_interval_s, sweep_stop), name="retention"
        )

    async def stop() -> None:
        manager.stop()
        registered_manager.stop()
        adb.stop()
        sweep_stop.set()
        # Told to stop, each ends after its current pass; one blocked on a broker or a phone that
        # does not answer is cancelled after STOP_WAIT_S (the command exits within 10 s of SIGTERM).
        await _ended(
            [
                t
                for t in (sweeping, webhooks, scheduling, reaping, runner, registered_runner, supervising)
                if t is not None
            ]
        )

    try:
        await serve_until_signal(start, stop)
    finally:
        # Also when start() failed: no phone process or connection outlives the command.
        if not await adb.answers(timeout=0.5):
            # Dead or wedged: stopped first (if it is the pool's), so the phones' disconnects below
            # fail at once instead of each waiting out its deadline on a server that never answers.
            await _bounded(adb.close(), "stopping the adb server", ADB_CLOSE_WAIT_S)
        close_wait_s = REDROID_CLOSE_WAIT_S if redroid else CLOSE_WAIT_S
        # At once: the two sets of phones are independent, and their waits must not add up.
        await asyncio.gather(
            _bounded(provider.close(), f"closing the {provider.name} provider", close_wait_s),
            _bounded(registered.close(), "closing the registered phones"),
        )
        # The server this pool started goes with it; one it found running is left as it was.
        await _bounded(adb.close(), "stopping the adb server", ADB_CLOSE_WAIT_S)
        await store.close()
        await events_signal.close()
        queue.close()
        await engine.dispose()


def _cmd_pool(args: argparse.Namespace) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from device_pool.errors import PhoneFleetError
    from orchestrator.settings import load_settings

    try:
        settings = load_settings()
    except ValidationError as exc:
        refuse("pool", f"{exc}")
        return 2
    try:
        asyncio.run(_serve(settings, args))
    except (ValueError, ValidationError, json.JSONDecodeError) as exc:
        refuse("pool", f"{exc}")
        return 2
    except (SQLAlchemyError, OSError, PhoneFleetError) as exc:
        # An unreachable or unmigrated database, a provider that cannot start: one line, not a traceback.
        refuse("pool", f"{type(exc).__name__}: {exc}")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pool", help="run the device pool manager (provider from PHONEFLEET_POOL__*)")
    parser.add_argument(
        "--devices-file", default=None, help="static_adb: JSON list of phones (StaticDevice entries)"
    )
    parser.add_argument(
        "--max-devices", type=int, default=None, help="most phones in the pool (default max(count, min_idle))"
    )
    parser.add_argument("--adb-port", type=int, default=5037, help="the adb server's port (default 5037)")
    parser.add_argument(
        "--adb-server-owned",
        action="store_true",
        help="the adb server on --adb-port is the pool's even if something else started it: a wedged "
        "one is killed and replaced (by default only a server the pool started itself is killed)",
    )
    parser.add_argument(
        "--health-interval", type=float, default=30.0, help="seconds between health checks of an idle phone"
    )
    parser.add_argument(
        "--reap-interval", type=float, default=5.0, help="seconds between passes that reap expired leases"
    )
    parser.add_argument(
        "--sweep-interval",
        type=float,
        default=10.0,
        help="seconds between sweeps that re-enqueue lost tasks (default 10); dead workers' tasks are "
        "looked for every fifth of pool.worker_lost_s, at most this",
    )
    parser.set_defaults(func=_cmd_pool)
