"""What must hold after every chaos scenario, whatever its fault: read from the database, the
phones and the logs, never from what the test process believes it did.

``check(fleet, submitted, phones)`` returns the violations (empty: all hold):

1. **No task missing or extra.** The database holds exactly the submitted tasks.
2. **Every task ended, within its budget.** Each is final: ``succeeded``, or ``failed`` with an
   infrastructure reason (``INFRA_REASONS``, the one list) after the product retried it
   (``tasks.max_infra_attempts`` attempts, or a message saying why it was not retried) — never cancelled, timed out, or failed for an agent's reason. No task took
   longer from submission to its end than ``attempts × timeout_s`` plus the slack re-queueing may add.
3. **Nothing lost.** A succeeded task's steps are numbered 0..n-1 without a gap, end with
   ``finish``, each has its screenshot file, and each has its ``task.step`` event; every task has its
   ``task.created`` event and its last ``task.status`` event names the status it ended in.
4. **No phone leased twice.** In the lease log no device has two leases at once, and every lease
   has ended (no lease outlives its task).
5. **Every phone reset before each lease.** Between a device's previous lease ending (or the
   fleet's start) and each of its leases, the pool logged a reset of that phone (``phone reset``,
   ``phone restarted in factory state``, or ``phone starting``: a new process starts in factory
   state); and the first step of each lease saw the launcher, although every task leaves another
   app in front (the workload's script launches Settings first).
6. **The phones are back.** Every phone is idle with the launcher in front (asked over adb).
7. **No 500 and no traceback** in the API's log.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select

from device_pool.driver import AdbDevice
from device_pool.providers.checks import DEFAULT_LAUNCHER
from orchestrator.db import Device, DeviceState, Event, Lease, Step, Task, TaskStatus
from orchestrator.settings import Settings
from tests.aio import run
from tests.system.conftest import Fleet

# Why a task may fail in a chaos scenario: the infrastructure gave out (a worker, a phone, the model
# server, the broker, the database), never the agent. One list, for every scenario.
INFRA_REASONS = frozenset(
    {
        "worker_lost",  # its worker stopped heartbeating (the sweeper or a re-claim ended it)
        "model_unavailable",  # the model server did not answer within the run's patience
        "device_error",  # the phone stopped answering (killed, or the adb server gone)
        "no_device",  # no phone came free within the wait
        "lease_lost",  # the run's lease was reaped under it
        "worker_error",  # the run failed outside the agent (a database or broker error)
    }
)
# The attempts an infrastructure failure gets by default (tasks.max_infra_attempts; the chaos fleets keep it).
MAX_INFRA_ATTEMPTS = Settings().tasks.max_infra_attempts
# What the workload leaves in front of a phone and what a reset phone shows instead (steps' current_app).
LAUNCHER_APP = "Home screen"
# The pool's log lines that mean a phone is in factory state (device_pool/providers/sim.py).
RESET_LINES = ("phone reset", "phone restarted in factory state", "phone starting")
# Re-queueing slack per attempt on top of its timeout_s: a lost worker found (worker_lost_s), a lost
# message re-sent (the sweeper's 30 s grace), a phone waited for.
ATTEMPT_SLACK_S = 90.0

_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ (\S+) (.*)$")
_SERVER_ERROR = re.compile(r'HTTP/[\d.]+" 500\b')


def check(fleet: Fleet, submitted: list[str], phones: int) -> list[str]:
    """The violations of the invariants above (an empty list when all hold)."""
    problems: list[str] = []
    tasks = {str(t.id): t for t in fleet.rows(select(Task))}
    steps: dict[str, list[Step]] = defaultdict(list)
    for step in fleet.rows(select(Step).order_by(Step.task_id, Step.index)):
        steps[str(step.task_id)].append(step)
    events: dict[str, list[Event]] = defaultdict(list)
    for event in fleet.rows(select(Event).where(Event.task_id.is_not(None)).order_by(Event.id)):
        events[str(event.task_id)].append(event)

    problems += _all_there(tasks, submitted)
    for task_id, task in tasks.items():
        problems += _ended_well(task)
        problems += _nothing_lost(fleet.data_dir, task, steps[task_id], events[task_id])
    leases = fleet.leases()
    devices = {d.id: d for d in fleet.rows(select(Device))}
    problems += _leased_once(leases, devices)
    problems += _reset_before_each_lease(leases, devices, steps, pool_resets(fleet.logs / "pool.log"))
    problems += _phones_back(fleet, devices, phones)
    problems += _api_log_clean(fleet.logs / "api.log")
    return problems


def _all_there(tasks: dict[str, Task], submitted: list[str]) -> list[str]:
    missing = sorted(set(submitted) - set(tasks))
    extra = sorted(set(tasks) - set(submitted))
    return [f"task {t} was submitted (202) but is not in the database" for t in missing] + [
        f"task {t} is in the database but was never submitted" for t in extra
    ]


def _ended_well(task: Task) -> list[str]:
    what = f"task {task.id} ({task.status}, {task.reason}: {task.message}; attempts {task.attempts})"
    if not task.status.is_final:
        return [f"{what} never ended"]
    if task.status == TaskStatus.FAILED and task.reason in INFRA_REASONS:
        # Retried until its attempts ran out, or refused a retry with the reason in its message.
        if task.attempts < MAX_INFRA_ATTEMPTS and "not retried:" not in (task.message or ""):
            return [f"{what} failed for the infrastructure without being retried"]
    elif task.status != TaskStatus.SUCCEEDED:
        return [f"{what} ended neither succeeded nor failed for the infrastructure"]
    took_s = (task.finished_at - task.created_at).total_seconds() if task.finished_at else None
    budget_s = max(task.attempts, 1) * (task.timeout_s + ATTEMPT_SLACK_S)
    if took_s is None or took_s > budget_s:
        return [f"{what} took {took_s} s from submission to its end, past its budget of {budget_s:g} s"]
    return []


def _nothing_lost(data_dir: Path, task: Task, steps: list[Step], events: list[Event]) -> list[str]:
    problems = []
    types = [e.type for e in events]
    if types.count("task.created") != 1:
        problems.append(f"task {task.id} has {types.count('task.created')} task.created events")
    statuses = [e.payload for e in events if e.type == "task.status"]
    if task.status.is_final and (not statuses or statuses[-1].get("to") != task.status.value):
        problems.append(
            f"task {task.id} ended {task.status} but its last task.status event says {statuses[-1:]}"
        )
    if types.count("task.step") != len(steps):
        problems.append(
            f"task {task.id} has {len(steps)} steps but {types.count('task.step')} task.step events"
        )
    if task.status != TaskStatus.SUCCEEDED:
        return problems
    if [s.index for s in steps] != list(range(len(steps))):
        problems.append(f"task {task.id}'s steps are numbered {[s.index for s in steps]}")
    if not steps or (steps[-1].action or {}).get("name") != "finish":
        problems.append(
            f"succeeded task {task.id} has no finish step: {[(s.action or {}).get('name') for s in steps]}"
        )
    for step in steps:
        if not step.screenshot or not (data_dir / step.screenshot).is_file():
            problems.append(f"task {task.id} step {step.index}: screenshot {step.screenshot!r} is missing")
    return problems


def _leased_once(leases: list[Lease], devices: dict[Any, Device]) -> list[str]:
    problems = []
    for device_id, held in _by_device(leases).items():
        serial = devices[device_id].serial if device_id in devices else device_id
        for lease in held:
            if lease.released_at is None:
                problems.append(f"lease {lease.id} of {serial} (task {lease.task_id}) never ended")
        for before, after in itertools.pairwise(held):
            if before.released_at is None or before.released_at > after.acquired_at:
                problems.append(
                    f"{serial} was leased twice at once: lease {before.id} (task {before.task_id}, "
                    f"{before.acquired_at}–{before.released_at}) and {after.id} (task {after.task_id}, "
                    f"from {after.acquired_at})"
                )
    return problems


def _reset_before_each_lease(
    leases: list[Lease],
    devices: dict[Any, Device],
    steps: dict[str, list[Step]],
    resets: dict[str, list[dt.datetime]],
) -> list[str]:
    problems = []
    slack = dt.timedelta(milliseconds=2)  # log lines carry milliseconds, rows microseconds
    for device_id, held in _by_device(leases).items():
        serial = devices[device_id].serial
        previous_end: dt.datetime | None = None
        for lease in held:
            if not any(
                (previous_end is None or at >= previous_end - slack) and at <= lease.acquired_at + slack
                for at in resets.get(serial, [])
            ):
                since = (
                    "the fleet's start"
                    if previous_end is None
                    else f"its previous lease ended ({previous_end})"
                )
                problems.append(
                    f"{serial} was leased at {lease.acquired_at} (task {lease.task_id}) with no reset since {since}"
                )
            previous_end = lease.released_at
            end = lease.released_at or dt.datetime.max.replace(tzinfo=dt.UTC)
            during = [
                s for s in steps.get(str(lease.task_id), []) if lease.acquired_at <= s.created_at <= end
            ]
            if during and during[0].current_app != LAUNCHER_APP:
                problems.append(
                    f"the first step on {serial} under lease {lease.id} (task {lease.task_id}) saw "
                    f"{during[0].current_app!r}, not the launcher: the phone was not reset"
                )
    return problems


def _phones_back(fleet: Fleet, devices: dict[Any, Device], phones: int) -> list[str]:
    live = [d for d in devices.values() if d.state != DeviceState.RETIRED]
    idle = [d for d in live if d.state == DeviceState.IDLE]
    problems = []
    if len(idle) != phones or len(live) != phones:
        problems.append(
            f"{len(idle)} of {phones} phones idle at the end: {[(d.serial, d.state, d.last_error) for d in live]}"
        )
    for device in idle:
        try:
            package, _ = run(
                AdbDevice(device.serial, adb_port=fleet.adb_port).foreground(timeout=10), timeout=30
            )
        except Exception as exc:  # the phone itself is the witness: any failure to ask it is a finding
            problems.append(f"{device.serial} is idle but does not answer adb: {type(exc).__name__}: {exc}")
            continue
        if package != DEFAULT_LAUNCHER:
            problems.append(f"{device.serial} is idle with {package} in front, not the launcher")
    return problems


def _api_log_clean(path: Path) -> list[str]:
    lines = path.read_text(errors="replace").splitlines()
    bad = [line for line in lines if _SERVER_ERROR.search(line) or "Traceback" in line]
    return [f"the API's log has {len(bad)} lines with a 500 or a traceback, first: {bad[0]}"] if bad else []


def pool_resets(path: Path) -> dict[str, list[dt.datetime]]:
    """serial → when the pool logged it in factory state (reset, restarted, or started anew)."""
    found: dict[str, list[dt.datetime]] = defaultdict(list)
    for line in path.read_text(errors="replace").splitlines():
        matched = _LOG_LINE.match(line)
        if not matched or not matched.group(3).startswith(RESET_LINES):
            continue
        serial = re.search(r"\bserial=(\S+)", matched.group(3))
        if serial:
            # The log's time is the host's local time, as logging's asctime prints it.
            at = dt.datetime.strptime(matched.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone(dt.UTC)
            found[serial.group(1)].append(at)
    return found


def _by_device(leases: list[Lease]) -> dict[Any, list[Lease]]:
    held: dict[Any, list[Lease]] = defaultdict(list)
    for lease in sorted(leases, key=lambda lease: (lease.acquired_at, str(lease.id))):
        held[lease.device_id].append(lease)
    return held
