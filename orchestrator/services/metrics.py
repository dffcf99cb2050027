"""Fleet metrics for Prometheus, read from the database at each scrape (``GET /metrics``).

Workers and the pool write the facts (tasks, devices, steps, leases) from other processes and hosts,
so the API reports what the database says rather than what it saw itself:

- **Gauges** are counted at each scrape: tasks by status, devices by state, queued tasks (in all and
  by named device profile). Every API replica therefore reports the same numbers.
- **Histograms** (step duration, model latency, lease wait) are cumulative in this process, fed by an
  ingester that reads, at each scrape, the rows written since its watermark: ``task.step`` and
  ``device.leased`` events (written in the same transaction as the ``steps`` / ``leases`` row, and
  read in id order through the events primary key, so a scrape costs the rows since the last one,
  not a scan of the steps table). At most ``batch`` rows per source per scrape; the rest on the next.
  The watermark starts at 0, so each replica replays the whole history (over a few scrapes after a
  start) and replicas converge on the same counts: scrape one, or aggregate replicas with ``max``.
  A restarted replica's counts drop and climb back, which Prometheus treats as a counter reset.
- **Rows committed late.** PostgreSQL hands out event ids at insert, so a transaction can commit
  after a higher id is visible. The ingester only takes rows whose ``created_at`` is at least
  ``lag_s`` old and stops at the first younger one, so a row committed within ``lag_s`` of being
  stamped is never skipped (hosts run NTP: a clock behind by more than ``lag_s`` can still lose one).

Step timings are the worker's ``steps.timings`` (seconds): duration = ``capture_s + model_s + act_s
+ settle_s``, model latency = ``model_s``. Lease wait = ``leases.acquired_at - tasks.claimed_at`` (the
claim is when the task starts leasing); a lease of an earlier attempt, which a later claim
overwrote, gives a negative wait and is skipped.

- **Tenants** (gauges, counted at each scrape like the others; label ``tenant``: its name): tasks
  running (claimed, not ended) and sessions open now, tasks created, phone-minutes (its leases) and
  model tokens (its steps, ``kind`` prompt or completion) this UTC day, and each limit in force
  (``phonefleet_tenant_limit{tenant, limit}``; an unlimited one has no series). The same reckoning
  as ``GET /api/v1/usage`` (``orchestrator/db/quotas.py``, ``services/usage.py``).
- **Dependencies**: ``phonefleet_dependency_up{dependency}`` is 1 or 0 for the database, the broker
  and the model server, from the same checks as ``/readyz`` (``services/health.py``) run at each
  scrape, so an alert can say the model server is unreachable or the broker down. (With the database
  down the scrape itself answers 503: the other gauges cannot be counted.)

``MetricsService.render(accept)`` refreshes and encodes (text format, or OpenMetrics when asked);
the encoding walks ``FleetCollector``, a ``prometheus_client`` collector in a registry of this app's
own (never the global one, so several apps in one process do not clash).
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select, tuple_

from orchestrator.db import (
    HELD_TASK_STATUSES,
    DbSession,
    Device,
    DeviceSession,
    DeviceState,
    Event,
    Lease,
    SessionState,
    Step,
    Task,
    TaskStatus,
    Tenant,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.db.quotas import Limits, day_start, lease_seconds_by_tenant_day
from orchestrator.services.health import HealthService

__all__ = ["CumulativeHistogram", "FleetCollector", "FleetSnapshot", "MetricsService"]

# Seconds. A step is a screenshot, a model call (the bulk), an action and a settle wait.
STEP_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
LEASE_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

STEP_EVENT, LEASE_EVENT = "task.step", "device.leased"
_STEP_PARTS = ("capture_s", "model_s", "act_s", "settle_s")
DEFAULT_PROFILE_LABEL = "default"  # queued tasks with no named profile (ad-hoc object or none)


class CumulativeHistogram:
    """Bucket counts and a sum that only grow (what a Prometheus histogram is), filled from rows."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, so a value equal to a bound counts in it (le).
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


@dataclass
class FleetSnapshot:
    """The gauges' values as of the last refresh."""

    tasks: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    queued_by_profile: dict[str, int] = field(default_factory=dict)
    # Per tenant name: its usage gauges (``_TENANT_GAUGES`` names) and its limits in force.
    tenants: dict[str, dict[str, float]] = field(default_factory=dict)
    tenant_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    dependencies: dict[str, int] = field(default_factory=dict)  # 1 up, 0 down (the readiness checks)


@dataclass
class _Source:
    """Where the ingester of one event type stands."""

    after_id: int = 0  # the last event id taken
    newest: dt.datetime | None = None  # that event's created_at


class FleetCollector(Collector):
    """Yields the snapshot's gauges and the histograms (``collect`` is synchronous: no I/O here)."""

    def __init__(self) -> None:
        self.snapshot = FleetSnapshot()
        self.step_duration = CumulativeHistogram(STEP_BUCKETS)
        self.model_latency = CumulativeHistogram(MODEL_BUCKETS)
        self.lease_wait = CumulativeHistogram(LEASE_WAIT_BUCKETS)
        self.sources = {STEP_EVENT: _Source(), LEASE_EVENT: _Source()}

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield _gauge("phonefleet_tasks", "Tasks by status (the whole tasks table).", "status",
                     {s.value: snap.tasks.get(s.value, 0) for s in TaskStatus})  # fmt: skip
        yield _gauge("phonefleet_devices", "Devices by state.", "state",
                     {s.value: snap.devices.get(s.value, 0) for s in DeviceState})  # fmt: skip
        queued = GaugeMetricFamily("phonefleet_queue_depth", "Tasks queued, not yet claimed by a worker.")
        queued.add_metric([], snap.tasks.get(TaskStatus.QUEUED.value, 0))
        yield queued
        yield _gauge("phonefleet_queue_depth_by_profile",
                     "Queued tasks by named device profile (default: no name).", "profile",
                     snap.queued_by_profile)  # fmt: skip
        if snap.dependencies:
            yield _gauge("phonefleet_dependency_up",
                         "1 when the dependency answered this scrape's check (as /readyz), else 0.",
                         "dependency", snap.dependencies)  # fmt: skip
        yield self.step_duration.family(
            "phonefleet_step_duration_seconds", "Agent step time: capture + model + act + settle."
        )
        yield self.model_latency.family("phonefleet_model_latency_seconds", "Model call time per step.")
        yield self.lease_wait.family(
            "phonefleet_lease_wait_seconds", "From a task's claim to its phone's lease."
        )
        yield from _tenant_families(snap)
        newest = GaugeMetricFamily(
            "phonefleet_metrics_ingested_until_timestamp_seconds",
            "created_at of the newest row the histograms include, per source (how far behind they are).",
            labels=["source"],
        )
        for name, label in ((STEP_EVENT, "steps"), (LEASE_EVENT, "leases")):
            at = self.sources[name].newest
            newest.add_metric([label], at.timestamp() if at else 0.0)
        yield newest


_TENANT_GAUGES = {
    "tasks_running": "Tasks a tenant has claimed and not ended (max_concurrent_tasks counts these).",
    "sessions_active": "Sessions a tenant holds open.",
    "tasks_today": "Tasks a tenant created this UTC day.",
    "phone_minutes_today": "Phone-minutes a tenant's leases used this UTC day (max_phone_minutes_per_day).",
}


def _tenant_families(snap: FleetSnapshot) -> Iterator[Metric]:
    for key, documentation in _TENANT_GAUGES.items():
        family = GaugeMetricFamily(f"phonefleet_tenant_{key}", documentation, labels=["tenant"])
        for tenant, values in sorted(snap.tenants.items()):
            family.add_metric([tenant], values.get(key, 0))
        yield family
    tokens = GaugeMetricFamily(
        "phonefleet_tenant_model_tokens_today",
        "Model tokens of a tenant's steps this UTC day.",
        labels=["tenant", "kind"],
    )
    for tenant, values in sorted(snap.tenants.items()):
        for kind in ("prompt", "completion"):
            tokens.add_metric([tenant, kind], values.get(f"{kind}_tokens_today", 0))
    yield tokens
    limits = GaugeMetricFamily(
        "phonefleet_tenant_limit",
        "A tenant's limit in force (no series: unlimited).",
        labels=["tenant", "limit"],
    )
    for tenant, values in sorted(snap.tenant_limits.items()):
        for name, limit in sorted(values.items()):
            limits.add_metric([tenant, name], limit)
    yield limits


def _gauge(name: str, documentation: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(values.items()):
        family.add_metric([value], count)
    return family


class MetricsService:
    """Refreshes the collector from the database and encodes its registry (one per app)."""

    def __init__(
        self,
        db: Database,
        *,
        health: HealthService | None = None,
        lag_s: float = 2.0,
        batch: int = 2000,
        quotas: Any = None,
    ) -> None:
        self.db = db
        self.quotas = quotas  # settings.quotas: the tenants' default limits
        self.health = health
        self.lag_s = lag_s
        self.batch = batch
        self.collector = FleetCollector()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._lock = asyncio.Lock()  # concurrent scrapes must not ingest a row twice

    async def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Refresh, then the exposition for the ``Accept`` header: (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        async with self._lock:
            await self.refresh()
            return encoder(self.registry), content_type

    async def refresh(self) -> None:
        """Count the gauges and ingest new steps and leases (one read transaction); raises
        ``DatabaseUnavailable``."""
        threshold = utcnow() - dt.timedelta(seconds=self.lag_s)
        readiness = await self.health.readiness() if self.health is not None else None
        async with self.db.transaction() as db_session:
            snapshot = await _snapshot(db_session)
            await _tenant_snapshot(db_session, snapshot, self.quotas)
            await self._ingest_steps(db_session, threshold)
            await self._ingest_leases(db_session, threshold)
        if readiness is not None:
            snapshot.dependencies = {name: int(value == "ok") for name, value in readiness.checks.items()}
        self.collector.snapshot = snapshot

    async def _events(
        self, db_session: DbSession, type_: str, threshold: dt.datetime
    ) -> list[tuple[int, dt.datetime, uuid.UUID | None, dict[str, Any]]]:
        """The next events of ``type_`` old enough to take, up to the first too young (see the docstring)."""
        source = self.collector.sources[type_]
        rows = await db_session.execute(
            select(Event.id, Event.created_at, Event.task_id, Event.payload)
            .where(Event.type == type_, Event.id > source.after_id)
            .order_by(Event.id)
            .limit(self.batch)
        )
        taken = []
        for row in rows:
            if row.created_at > threshold:
                break
            taken.append((row.id, row.created_at, row.task_id, row.payload or {}))
        if taken:
            source.after_id, source.newest = taken[-1][0], taken[-1][1]
        return taken

    async def _ingest_steps(self, db_session: DbSession, threshold: dt.datetime) -> None:
        events = await self._events(db_session, STEP_EVENT, threshold)
        wanted = {(task_id, p["index"]) for _, _, task_id, p in events if task_id and _is_int(p.get("index"))}
        if not wanted:
            return
        rows = await db_session.execute(
            select(Step.timings).where(tuple_(Step.task_id, Step.index).in_(list(wanted)))
        )
        for (timings,) in rows:
            parts = [timings.get(k) for k in _STEP_PARTS] if isinstance(timings, dict) else []
            parts = [float(v) for v in parts if _is_number(v)]
            if parts:
                self.collector.step_duration.observe(sum(parts))
            model_s = timings.get("model_s") if isinstance(timings, dict) else None
            if _is_number(model_s):
                self.collector.model_latency.observe(float(model_s))

    async def _ingest_leases(self, db_session: DbSession, threshold: dt.datetime) -> None:
        events = await self._events(db_session, LEASE_EVENT, threshold)
        lease_ids = [
            lid for lid in (_uuid(p.get("lease_id")) for _, _, task_id, p in events if task_id) if lid
        ]
        if not lease_ids:
            return
        rows = await db_session.execute(
            select(Lease.acquired_at, Task.claimed_at)
            .join(Task, Task.id == Lease.task_id)
            .where(Lease.id.in_(lease_ids))
        )
        for acquired_at, claimed_at in rows:
            if claimed_at is None:
                continue
            wait = (acquired_at - claimed_at).total_seconds()
            if wait >= 0:
                self.collector.lease_wait.observe(wait)


async def _snapshot(db_session: DbSession) -> FleetSnapshot:
    tasks = await db_session.execute(select(Task.status, func.count()).group_by(Task.status))
    devices = await db_session.execute(select(Device.state, func.count()).group_by(Device.state))
    queued = await db_session.execute(
        select(Task.device_profile, func.count())
        .where(Task.status == TaskStatus.QUEUED)
        .group_by(Task.device_profile)
    )
    return FleetSnapshot(
        tasks={_value(status): count for status, count in tasks},
        devices={_value(state): count for state, count in devices},
        queued_by_profile=_by_profile(queued),
    )


async def _tenant_snapshot(db_session: DbSession, snapshot: FleetSnapshot, quotas: Any) -> None:
    """Each tenant's usage today and limits in force (see the module docstring)."""
    now = utcnow()
    today = day_start(now)
    tenants = (await db_session.execute(select(Tenant.id, Tenant.name, Tenant.limits))).all()
    names = {row.id: row.name for row in tenants}
    values: dict[str, dict[str, float]] = {row.name: {} for row in tenants}

    def put(tenant_id: Any, key: str, amount: float) -> None:
        if tenant_id in names:
            values[names[tenant_id]][key] = amount

    running = select(Task.tenant_id, func.count()).where(Task.status.in_(HELD_TASK_STATUSES))
    for tenant_id, count in await db_session.execute(running.group_by(Task.tenant_id)):
        put(tenant_id, "tasks_running", count)
    sessions = select(DeviceSession.tenant_id, func.count()).where(
        DeviceSession.state == SessionState.ACTIVE, DeviceSession.expires_at > now
    )
    for tenant_id, count in await db_session.execute(sessions.group_by(DeviceSession.tenant_id)):
        put(tenant_id, "sessions_active", count)
    created = select(Task.tenant_id, func.count()).where(Task.created_at >= today)
    for tenant_id, count in await db_session.execute(created.group_by(Task.tenant_id)):
        put(tenant_id, "tasks_today", count)
    tokens = (
        select(Task.tenant_id, func.sum(Step.prompt_tokens), func.sum(Step.completion_tokens))
        .join(Task, Task.id == Step.task_id)
        .where(Step.created_at >= today)
    )
    for tenant_id, prompt, completion in await db_session.execute(tokens.group_by(Task.tenant_id)):
        put(tenant_id, "prompt_tokens_today", prompt or 0)
        put(tenant_id, "completion_tokens_today", completion or 0)
    for tenant_id, days in (await lease_seconds_by_tenant_day(db_session, today, now)).items():
        put(tenant_id, "phone_minutes_today", sum(days.values()) / 60)
    snapshot.tenants = values
    snapshot.tenant_limits = {
        row.name: {k: v for k, v in Limits.resolve(quotas, row.limits).as_dict().items() if v is not None}
        for row in tenants
    }


def _by_profile(rows: Iterable[tuple[Any, int]]) -> dict[str, int]:
    # A named profile is stored as its name (a string; it has a queue of its own); an ad-hoc object
    # or none goes to the default queue. Ad-hoc objects are not labels: their number is unbounded.
    counts: dict[str, int] = {}
    for profile, count in rows:
        label = profile if isinstance(profile, str) else DEFAULT_PROFILE_LABEL
        counts[label] = counts.get(label, 0) + count
    return counts


def _value(member: Any) -> str:
    return str(getattr(member, "value", member))


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
