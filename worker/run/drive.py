"""One task, run by a worker: claim → lease a phone → run the agent → finish → release.

``perform_run(task_id, deps)`` is the domain function the Celery task calls (once per delivery,
inside ``asyncio.run``). The database is the truth and the message only a hint, so:

1. **claim** the task in one conditional UPDATE (``rows.TaskRows.claim``); a delivery for a
   task that is claimed by a live worker, cancelled or finished does nothing;
2. **lease** its personal phone (``personal_phone_id``: ``PersonalPhoneLeases``, woken if asleep,
   ``waiting: personal_phone_busy`` while another holds it; the wake's seconds in ``timings.wake_s``)
   or a phone matching ``device_profile`` — an object, or a named profile resolved through
   this worker's ``pool.profiles`` (a name it does not know → ``failed``/``unknown_profile``) —
   (``LeaseStore.wait_acquire``, at most ``max_lease_wait_s`` and never past the budget; the task
   says ``waiting: no_device`` meanwhile) → ``failed``/``no_device`` when none comes free;
3. **run**: status ``running`` (device_id, started_at), then the agent (``phone_agent``) with hooks that record
   every step and state in the database, and a watcher that heartbeats the task and the lease and
   turns a cancel request into ``AgentSteering.cancel`` (``hooks.py``);
4. **finish**: the status from the ``AgentResult``, ``result`` merged into the row's (timings,
   usage, steps), a ``task.status`` event; the lease is **always** released (→ ``resetting``: the
   pool manager resets the phone). A crashed worker releases nothing: its task's heartbeat goes
   stale (``pool.worker_lost_s``), and whoever takes the task over — the sweeper, or the next
   delivery's claim — ends its lease then, for a reset, instead of waiting out the lease TTL.

The budget (``timeout_s``) counts from this attempt's claim: leasing and running share it, and
each attempt has all of it.

**Infrastructure ends are retried, agent ends are not** (docs/control-plane.md, "Retries"). An
attempt that ends because of the infrastructure — the model server failing past
``model.outage_budget_s`` (``model_unavailable``), the phone unreachable (``device_error``: the
phone is at fault), the lease lost, the database or broker out of reach (``worker_error`` caused
by one), the worker shutting down (``worker_shutdown``: the run is cancelled) — is re-queued
(``TaskRows.requeue``; ``RunEnd.retry_in_s`` tells the Celery task to send the delayed message)
while ``attempts < tasks.max_infra_attempts`` and ``rows.retry_refusal`` allows it (a task that
acted on the phone: ``retry_after_acting``); otherwise it fails with that reason, its message
saying why it was not retried. A lost worker is the same rule, applied by the next claim. Before
any of that, an agent failure that another try may mend (stuck, max_steps…) starts the agent again
on the same phone while the task's ``max_tries`` allow (``tries.py``; each attempt has all its
tries); a task chain runs its subgoals one after another on the one phone (``chain.py``). Every
other end (succeeded, max_steps, stuck, parse_errors, model_error, denied, needs_user, no_answer, timeout,
cancelled, no_device, unknown_profile) is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import redis.exceptions
from sqlalchemy.ext.asyncio import AsyncEngine

from device_pool.errors import (
    DeviceError,
    NoDeviceAvailable,
    PersonalPhoneBusy,
    PersonalPhoneWakeFailed,
    PhoneFleetError,
)
from device_pool.logs import bind
from device_pool.pool import DEVICE_ERROR, RELEASED, LeaseGrant, LeaseStore, signal_for
from device_pool.pool.personal import PersonalPhoneLeases
from orchestrator.db import (
    WORKER_SHUTDOWN,
    TaskStatus,
    WaitingKind,
    make_engine,
    make_sessionmaker,
    utcnow,
    waiting,
)
from orchestrator.db.database import Database
from orchestrator.encryption import screenshot_cipher
from orchestrator.errors import UnknownDeviceProfile, UnknownModelEndpoint
from orchestrator.model_endpoints import endpoint_for
from orchestrator.notifier import EventSignal
from orchestrator.profiles import profile_match
from orchestrator.settings import Settings
from orchestrator.vault_cipher import VaultCipher
from worker.agent.results import AgentResult, FailReason, RunStatus
from worker.agent.steering import AgentSteering
from worker.run.chain import Chain, run_chain
from worker.run.hooks import CLAIM_LOST, LEASE_LOST, TaskHooks, Watcher
from worker.run.rows import Claim, TaskRows
from worker.run.secrets import TenantSecrets, redaction_rules
from worker.run.tries import Tries, run_tries

__all__ = ["MAX_LEASE_WAIT_S", "UNKNOWN_PROFILE", "WORKER_ERROR", "RunDeps", "RunEnd", "perform_run"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Longest wait for a phone; with the longest budget (3600 s) it stays far below the broker's
# visibility timeout (orchestrator.queue.VISIBILITY_TIMEOUT_S, 2 h), so no redelivery races a run.
MAX_LEASE_WAIT_S = 300.0
# The end reason of a task naming a device profile this worker's settings do not define.
UNKNOWN_PROFILE = "unknown_profile"
# The end reason of a run that raised (an infrastructure end when a dependency out of reach caused it).
WORKER_ERROR = "worker_error"
# The agent's failures that the infrastructure caused, and whether the phone was at fault.
_INFRA_REASONS = {FailReason.MODEL_UNAVAILABLE: False, FailReason.DEVICE_ERROR: True}


@dataclass(frozen=True)
class RunDeps:
    """What a run is built from: the settings and this worker's plain values (no open resources)."""

    settings: Settings
    worker_id: str  # this worker process, e.g. host:pid
    adb_host: str = "127.0.0.1"
    adb_port: int = 5037  # the adb server the pool's phones are connected through (as `phonefleet pool`)
    watch_interval_s: float = 0.5  # cancel reaches the loop within about this long
    answer_poll_s: float = 0.5
    max_lease_wait_s: float = MAX_LEASE_WAIT_S

    @classmethod
    def from_settings(cls, settings: Settings, *, adb_port: int = 5037, **overrides: Any) -> RunDeps:
        """Deps for this process (worker id ``host:pid``)."""
        return cls(
            settings=settings,
            worker_id=f"{socket.gethostname()}:{os.getpid()}",
            adb_port=adb_port,
            **overrides,
        )


@dataclass
class RunEnd:
    """What the caller of ``perform_run`` is to do once it returns (or was cancelled)."""

    # Send the task's message again, to be delivered in this many seconds: the run re-queued it.
    retry_in_s: float | None = None
    # Send these tasks' messages now (their ids): an eval's tasks its ``parallel`` held
    # back, moved back to ``queued`` as this one ended and freed a slot.
    send_now: list[uuid.UUID] = field(default_factory=list)


async def perform_run(task_id: uuid.UUID, deps: RunDeps, end: RunEnd | None = None) -> TaskStatus | None:
    """Run task ``task_id`` if this delivery can claim it; returns the end status (``queued`` when
    re-queued for another attempt: ``end.retry_in_s`` is set then), None if not claimed.

    Raises only before the claim (a retryable ``DatabaseUnavailable`` when the database is down);
    afterwards every failure ends the task (``failed``) or re-queues it, or, if even that cannot be
    written, leaves it to the stale-heartbeat re-claim. A cancel (the worker's shutdown) re-queues
    the task, then goes on up.
    """
    end = end if end is not None else RunEnd()
    settings = deps.settings
    # One id per run: the fence on the task row and the lease holder.
    holder_id = f"{deps.worker_id}/{secrets.token_hex(3)}"
    async with AsyncExitStack() as stack:
        # An engine per run: asyncpg connections belong to the event loop that opened them.
        engine = make_engine(settings.database_url)
        stack.push_async_callback(engine.dispose)
        # Wake-ups for the API's event readers (WebSocket, webhooks) once a write commits; a hint only.
        notifier = EventSignal(settings.redis_url)
        stack.push_async_callback(notifier.close)
        rows = TaskRows(Database(make_sessionmaker(engine)), task_id, holder_id, notifier=notifier)
        claim = await rows.claim(
            stale_s=settings.pool.worker_lost_s,
            max_attempts=settings.tasks.max_infra_attempts,
            quotas=settings.quotas,
        )
        if claim is None:
            return None
        run = _Run(claim, rows, deps, end)
        # However the run ends (the finally also runs on the way out of a cancel), what it handed on.
        stack.callback(lambda: end.send_now.extend(rows.handed_on))
        try:
            return await _run_claimed(run, stack, engine)
        except asyncio.CancelledError:
            # Only the worker's bounded shutdown cancels a whole run (worker/shutdown.py): the
            # infrastructure ended it, and another worker is to take the task over. (The lease was
            # released on the way out, shielded.)
            logger.warning("run cancelled by the worker's shutdown; re-queueing its task")
            with contextlib.suppress(Exception):
                await run.end(
                    _Outcome(TaskStatus.FAILED, WORKER_SHUTDOWN, "its worker shut down", infra=True)
                )
            raise
        except Exception as exc:
            logger.exception("run failed")
            outcome = _Outcome(
                TaskStatus.FAILED, WORKER_ERROR, f"worker error: {type(exc).__name__}",
                infra=_caused_by_infrastructure(exc),
            )  # fmt: skip
            with contextlib.suppress(Exception):
                return await run.end(outcome)
            return TaskStatus.FAILED


async def _run_claimed(run: _Run, stack: AsyncExitStack, engine: AsyncEngine) -> TaskStatus | None:
    claim, rows, deps = run.claim, run.rows, run.deps
    settings = deps.settings
    deadline = time.monotonic() + claim.timeout_s
    try:
        # A named profile means what this worker's settings say (as the API's, in one deployment).
        match = profile_match(claim.device_profile, settings.pool.profiles)
    except UnknownDeviceProfile as exc:
        await rows.finish(TaskStatus.FAILED, reason=UNKNOWN_PROFILE, message=exc.message, result={})
        return TaskStatus.FAILED
    signal = signal_for(settings.redis_url)
    store = LeaseStore.for_engine(engine, signal=signal)
    stack.push_async_callback(store.close)
    if claim.ended_leases:
        await signal.notify(RELEASED)  # the claim ended a lost run's lease: the pool resets its phone now
    steering = AgentSteering()
    watcher = Watcher(
        rows, steering, interval_s=deps.watch_interval_s, heartbeat_s=settings.pool.heartbeat_s,
        task_heartbeat_s=settings.pool.worker_heartbeat_s, lost_s=settings.pool.worker_lost_s,
    )  # fmt: skip
    watcher.start()
    stack.push_async_callback(watcher.stop)

    wait_s = max(0.0, min(deadline - time.monotonic(), deps.max_lease_wait_s))
    if claim.personal_phone_id is not None:
        try:
            grant = await _lease_personal(run, store, steering, wait_s)
        except (PersonalPhoneBusy, PersonalPhoneWakeFailed) as exc:
            await watcher.stop()
            await rows.finish(TaskStatus.FAILED, reason=exc.code, message=exc.message, result={})
            return TaskStatus.FAILED
    else:
        # The phones earlier attempts failed on, unless no other phone in service matches: then one
        # of them, after its reset, rather than none.
        avoid = claim.avoid_devices
        if avoid and not await store.serves_besides(match, avoid):
            logger.info(
                "no other phone matches; the one that failed may be leased again", extra={"avoid": len(avoid)}
            )
            avoid = ()
        lease = {"holder": rows.worker_id, "tenant_id": claim.tenant_id, "task_id": claim.task_id,
                 "profile": match, "ttl_s": settings.pool.lease_ttl_s, "avoid": avoid}  # fmt: skip
        try:
            grant = await store.acquire(**lease)
            if grant is None:
                # No idle phone now: the wait may last minutes, so the task says why it does not move.
                wanted = f" matching {match}" if match else ""
                other = " other than the one an earlier attempt failed on" if avoid else ""
                message = f"no idle device{wanted}{other}; waiting up to {wait_s:g} s for one"
                await rows.set_waiting(waiting(WaitingKind.NO_DEVICE, message, utcnow()))
                grant = await _unless_interrupted(store.wait_acquire(**lease, timeout_s=wait_s), steering)
        except NoDeviceAvailable as exc:
            # Rather than fail no_device, a retry that waited in vain for another phone takes an idle
            # one it was avoiding.
            grant = await store.acquire(**(lease | {"avoid": ()})) if avoid else None
            if grant is None:
                await watcher.stop()
                await rows.finish(TaskStatus.FAILED, reason="no_device", message=exc.message, result={})
                return TaskStatus.FAILED
    if grant is None:  # cancelled (or re-claimed) while waiting for a phone
        await watcher.stop()
        return await run.end(_interrupted(steering))

    with bind(device_id=grant.device_id, lease_id=grant.lease_id):
        release_reason = "released"
        try:
            watcher.watch_lease(store, grant, settings.pool.lease_ttl_s)
            if not await rows.set_status(TaskStatus.RUNNING, device_id=grant.device_id, started_at=utcnow()):
                steering.cancel(CLAIM_LOST)
                return None
            tries = await _drive(claim, grant, rows, steering, deps, deadline, run)
            result = tries.result
            await watcher.stop()
            outcome = _outcome(result, steering)
            if steering.cancel_reason == LEASE_LOST:
                release_reason = LEASE_LOST
            elif outcome.device_at_fault:
                # Told to the pool: a phone whose runs keep failing so is quarantined (manager.py).
                release_reason = DEVICE_ERROR
            return await run.end(outcome, result, grant, tries)
        finally:
            await watcher.stop()
            # Shielded: a run torn down mid-release must still hand the phone back.
            released = await asyncio.shield(store.release(grant.lease_id, grant.holder, release_reason))
            logger.info(
                "lease released" if released else "lease already ended", extra={"reason": release_reason}
            )


async def _lease_personal(
    run: _Run, store: LeaseStore, steering: AgentSteering, wait_s: float
) -> LeaseGrant | None:
    """The task's personal phone, woken if it sleeps; it waits (``personal_phone_busy``) while
    another task or session holds it. None when cancelled meanwhile. Raises ``PersonalPhoneBusy``
    and ``PersonalPhoneWakeFailed``. The wake's seconds go to the run's timings (``wake_s``)."""
    claim, rows, settings = run.claim, run.rows, run.deps.settings
    assert claim.personal_phone_id is not None

    leases = PersonalPhoneLeases(store)

    async def busy() -> None:
        home = await leases.home_pool(claim.personal_phone_id)
        message = (
            f"personal phone {claim.personal_phone_id} is held by another task or session; "
            f"waiting up to {wait_s:g} s for it"
            if home is None
            # Pinned (its data is on that pool's host): no other pool may wake it, even if that one is gone.
            # The pool's id is fleet detail (operators see it as the phone's home_pool), so not named here.
            else f"personal phone {claim.personal_phone_id} wakes only on its home pool (the host that "
            f"holds its data), which has no idle device now (or is down); waiting up to {wait_s:g} s for one"
        )
        await rows.set_waiting(waiting(WaitingKind.PERSONAL_PHONE_BUSY, message, utcnow()))

    personal = await _unless_interrupted(
        leases.wait_acquire(
            claim.personal_phone_id, holder=rows.worker_id, tenant_id=claim.tenant_id, task_id=claim.task_id,
            ttl_s=settings.pool.lease_ttl_s, timeout_s=wait_s,
            wake_timeout_s=settings.personal_phones.wake_timeout_s, on_busy=busy,
        ),
        steering,
    )  # fmt: skip
    if personal is None:
        return None
    run.wake_s = personal.wake_s
    return personal.grant


async def _drive(
    claim: Claim,
    grant: LeaseGrant,
    rows: TaskRows,
    steering: AgentSteering,
    deps: RunDeps,
    deadline: float,
    run: _Run,
) -> Tries | Chain:
    """Connect the phone and the model, and run the agent until it ends, in tries (``tries.py``);
    a task chain's subgoals one after another (``chain.py``).

    An eval's task (``claim.evaluation``) is evaluated beside it, on the same phone: the template's
    start state before the first try, its score from the phone after the last (``run.evaluation``),
    with the suite's scripted person answering the agent (``worker/eval``; docs/evals.md)."""
    from worker.agent.app_policy import AppPolicy
    from worker.agent.loop import AgentConfig
    from worker.agent.phone_agent import phone_agent
    from worker.run.endpoints import PromptFileError, endpoint_run

    settings = deps.settings
    secrets = TenantSecrets(rows.db, claim.tenant_id, VaultCipher.from_settings(settings))
    redaction = await redaction_rules(rows.db, claim.tenant_id, settings)
    hooks = TaskHooks(
        rows, steering, data_dir=settings.data_dir, deadline=deadline, poll_s=deps.answer_poll_s,
        wait_for_user_s=settings.agent.wait_for_user_s, cipher=screenshot_cipher(settings), secrets=secrets,
    )  # fmt: skip

    def budget_left() -> float:
        return max(0.0, deadline - time.monotonic())

    try:  # the task's model names an endpoint (checked at submission; the settings may have changed since)
        model = endpoint_run(endpoint_for(claim.model, settings.model), settings.model)
    except (UnknownModelEndpoint, PromptFileError) as exc:
        return Tries(AgentResult(RunStatus.FAILED, str(exc), FailReason.MODEL_ERROR))
    async with AsyncExitStack() as stack:
        try:
            agent = await stack.enter_async_context(
                phone_agent(
                    grant.serial, model.client,
                    adb_host=deps.adb_host, adb_port=deps.adb_port,
                    # Redis makes the in-flight cap hold across every worker sharing the model server.
                    redis_url=settings.redis_url, grounder=model.grounder,
                )
            )  # fmt: skip
        except DeviceError as exc:
            logger.warning("phone unreachable", extra={"error": exc.message})
            return Tries(
                AgentResult(RunStatus.FAILED, f"phone unreachable: {exc.message}", FailReason.DEVICE_ERROR)
            )

        # The phone's video, recorded beside the run and finished (stack) before its end is written.
        from orchestrator.live.recorder import record

        recorder = await record(
            settings, "task", claim.task_id, grant.serial, redacted=bool(redaction.patterns),
            provider=grant.provider, adb_host=deps.adb_host, adb_port=deps.adb_port,
        )  # fmt: skip
        if recorder is not None:
            stack.push_async_callback(recorder.stop)
            hooks.video_offset = recorder.offset_ms

        evaluation = None
        if claim.evaluation is not None:
            from worker.eval.evaluation import Evaluation
            from worker.eval.person import ScriptedPerson

            try:
                evaluation = Evaluation(claim.evaluation, agent.device)
                await evaluation.start()
            except DeviceError as exc:
                logger.warning("evaluation start state failed", extra={"error": exc.message})
                return Tries(AgentResult(
                    RunStatus.FAILED, f"phone unreachable: {exc.message}", FailReason.DEVICE_ERROR
                ))  # fmt: skip
            hooks = ScriptedPerson(hooks, steering, evaluation.template, evaluation.params, evaluation.phone)  # type: ignore[assignment]

        async def run_task(task: str, context: str | None = None) -> Tries:
            """The agent at ``task`` (the instruction, or a chain's subgoal with ``context``), in tries."""

            async def run_try(earlier_tries: str | None) -> AgentResult:
                config = AgentConfig(
                    max_steps=claim.max_steps,  # each try has all of them; the budget is shared
                    budget_s=budget_left(),
                    lang=model.lang,
                    family=model.family,
                    prompt=model.prompt,
                    grounder_family=model.grounder_family,
                    planner_vision=model.planner_vision,
                    image_max_pixels=model.client.image_max_pixels,
                    model_outage_budget_s=settings.model.outage_budget_s,
                    on_stuck=settings.agent.on_stuck,
                    redaction=redaction,
                )
                told = "\n\n".join(part for part in (context, earlier_tries) if part) or None
                return await agent.run(
                    task, config=config, hooks=hooks, steering=steering, earlier_tries=told,
                    # A task on a personal phone is held to both lists (docs/security.md, "App allowlist").
                    app_policy=AppPolicy.of(claim.allowed_apps, claim.phone_allowed_apps),
                )  # fmt: skip

            return await run_tries(
                run_try, max_tries=claim.max_tries, rows=rows, hooks=hooks, steering=steering,
                lang=model.lang, budget_left=budget_left,
            )  # fmt: skip

        if claim.subgoals:
            outcome: Tries | Chain = await run_chain(
                run_task, instruction=claim.instruction, goals=claim.subgoals,
                on_step_failure=claim.on_step_failure, rows=rows, hooks=hooks, steering=steering,
                lang=model.lang, budget_left=budget_left,
            )  # fmt: skip
        else:
            outcome = await run_task(claim.instruction)
        if evaluation is not None and steering.cancel_reason not in (LEASE_LOST, CLAIM_LOST):
            person = hooks.log if isinstance(hooks, ScriptedPerson) else []
            try:
                run.evaluation = await evaluation.finish(asked=any(e["kind"] == "question" for e in person),
                                                         person=person)  # fmt: skip
            except DeviceError as exc:
                # No score: the eval counts the task with the infrastructure's failures.
                run.evaluation = {"template": evaluation.template.name, "error": exc.message}
        return outcome


@dataclass(frozen=True)
class _Outcome:
    status: TaskStatus
    reason: str | None
    message: str
    infra: bool = False  # the infrastructure ended the attempt: re-queued while the rules allow
    device_at_fault: bool = False  # ... and the next attempt avoids this phone


def _interrupted(steering: AgentSteering) -> _Outcome:
    """The end of a run stopped from outside: a lost lease fails it, a user's cancel cancels it."""
    if steering.cancel_reason == LEASE_LOST:
        return _Outcome(
            TaskStatus.FAILED, LEASE_LOST, "the phone's lease was lost (heartbeats failed)", infra=True
        )
    if steering.cancel_reason == CLAIM_LOST:
        return _Outcome(TaskStatus.CANCELLED, CLAIM_LOST, "another worker re-claimed the task")
    return _Outcome(TaskStatus.CANCELLED, "cancelled", steering.cancel_reason or "cancelled")


def _outcome(result: AgentResult, steering: AgentSteering) -> _Outcome:
    """The task's end status from the agent's result."""
    if steering.cancelled and result.status != RunStatus.SUCCEEDED:
        # A cancel also ends waits for people, which the agent reports as denied/needs_user.
        return _interrupted(steering)
    if result.status == RunStatus.SUCCEEDED:
        return _Outcome(TaskStatus.SUCCEEDED, None, result.message)
    if result.status == RunStatus.TIMED_OUT:
        return _Outcome(TaskStatus.TIMED_OUT, "timeout", result.message)
    if result.status == RunStatus.CANCELLED:
        return _Outcome(TaskStatus.CANCELLED, "cancelled", result.message)
    if result.reason in _INFRA_REASONS:
        return _Outcome(TaskStatus.FAILED, str(result.reason), result.message, infra=True,
                        device_at_fault=_INFRA_REASONS[result.reason])  # fmt: skip
    return _Outcome(TaskStatus.FAILED, str(result.reason) if result.reason else "failed", result.message)


def _caused_by_infrastructure(exc: BaseException) -> bool:
    """Whether a dependency out of reach (database, broker, Redis, a socket) raised ``exc`` or its cause."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain of causes, not forever
        if seen is None:
            return False
        if isinstance(seen, PhoneFleetError):
            if seen.retryable:  # DatabaseUnavailable, BrokerUnavailable, DeviceOffline…: may work later
                return True
        elif isinstance(
            seen, (OSError, TimeoutError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@dataclass
class _Run:
    """A claimed run's end: written once, final or re-queued (the module docstring's rule)."""

    claim: Claim
    rows: TaskRows
    deps: RunDeps
    ended: RunEnd
    wake_s: float | None = None  # how long its personal phone took to wake (None: no wake)
    evaluation: dict[str, Any] | None = None  # an eval's task: its score and reset (worker/eval)

    async def end(
        self,
        outcome: _Outcome,
        result: AgentResult | None = None,
        grant: LeaseGrant | None = None,
        tries: Tries | Chain | None = None,
    ) -> TaskStatus | None:
        if outcome.reason == CLAIM_LOST:
            return None  # another worker holds the task now: its end is theirs to write
        claim, tasks = self.claim, self.deps.settings.tasks
        summary: dict[str, Any] = {"attempt": claim.attempts, "worker_id": self.rows.worker_id}
        if grant is not None:
            summary["device_id"] = str(grant.device_id)
        if result is not None:
            summary |= {"steps": result.step_count, "elapsed_s": round(result.elapsed_s, 3)}
        if outcome.infra:
            if claim.attempts >= tasks.max_infra_attempts:
                refusal: str | None = f"no attempts left ({claim.attempts} of {tasks.max_infra_attempts})"
            else:
                refusal = await self.rows.retry_refusal(claim.retry_after_acting)
            if refusal is None:
                delay_s = tasks.backoff_s(claim.attempts)
                status = await self.rows.requeue(
                    reason=str(outcome.reason), message=outcome.message, attempt=claim.attempts,
                    max_attempts=tasks.max_infra_attempts, delay_s=delay_s,
                    device_id=None if grant is None else grant.device_id, avoid_device=outcome.device_at_fault,
                    summary={k: v for k, v in summary.items() if k != "device_id"},
                )  # fmt: skip
                if status == TaskStatus.QUEUED:
                    self.ended.retry_in_s = delay_s
                return status
            outcome = replace(outcome, message=f"{outcome.message}; not retried: {refusal}")
        if result is not None:
            summary |= {"timings": result.totals(), "usage": result.usage()}
        if tries is not None and tries.records:
            summary |= tries.summary()
        if self.evaluation is not None:
            summary["evaluation"] = self.evaluation
        if self.wake_s is not None:
            # The wake is a step of the run's timings: its personal phone was asleep.
            summary["timings"] = {**summary.get("timings", {}), "wake_s": round(self.wake_s, 3)}
        written = await self.rows.finish(
            outcome.status, reason=outcome.reason, message=outcome.message, result=summary
        )
        return outcome.status if written else None


async def _unless_interrupted(work: Awaitable[T], steering: AgentSteering) -> T | None:
    """``work``'s result, or None if the run is cancelled first (``work`` is then cancelled)."""
    job = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(steering.wait_interrupt())
    try:
        done, _ = await asyncio.wait({job, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
    return job.result() if job in done else None
