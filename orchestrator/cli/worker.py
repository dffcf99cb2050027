"""``phonefleet worker``: run tasks from the task queue, one run per thread (Celery, threads pool).

Settings come from the environment (``PHONEFLEET_DATABASE_URL``, ``PHONEFLEET_REDIS_URL``,
``PHONEFLEET_DATA_DIR``, ``PHONEFLEET_MODEL__*``, ``PHONEFLEET_POOL__LEASE_TTL_S`` …). Each of
``--concurrency`` threads holds one run (one task, from claim to release) at a time. ``--profiles`` picks the queues: ``default``
(tasks with no named profile) and named profiles of ``PHONEFLEET_POOL__PROFILES``; by default all of
them. ``--queues`` names Celery queues directly instead. SIGTERM or SIGINT is Celery's warm shutdown
(no new tasks), bounded (``worker.shutdown``): runs in progress get 2 s to end, then are cancelled,
and the process exits within 8 s of the signal whatever still waits; a second signal, or SIGQUIT,
stops at once. Interrupted runs leave their tasks to the stale-heartbeat re-claim.
"""

from __future__ import annotations

import argparse
import logging

from orchestrator.cli.refusal import refuse


def _keep_our_logging(**_: object) -> None:
    """Celery's ``setup_logging`` signal: with a receiver, Celery installs no handler or format of its
    own, so its lines (``ready.``, task received/succeeded) go through ours (``device_pool.logs``)."""


def _celery_prints_through_our_logging() -> None:
    """In a json log, Celery's own prints would be the only lines that are not JSON objects: its
    banner (``--quiet`` drops it; the queues are logged above) and its shutdown notices, which
    ``celery.apps.worker`` writes with its module function ``safe_say``. That function is replaced
    here, in this process only, by a log call."""
    import celery.apps.worker as celery_worker

    notices = logging.getLogger("celery.apps.worker")
    celery_worker.safe_say = lambda msg, f=None: notices.warning(str(msg).strip())


def _cmd_worker(args: argparse.Namespace) -> int:
    from celery.signals import setup_logging
    from pydantic import ValidationError

    from device_pool.logs import log_format
    from orchestrator.settings import load_settings
    from worker.celery_app import make_worker_app, worker_argv, worker_queues
    from worker.shutdown import bound_shutdown

    if args.concurrency < 1:
        refuse("worker", "--concurrency must be at least 1")
        return 2
    try:
        settings = load_settings()
    except ValidationError as exc:
        refuse("worker", f"{exc}")
        return 2
    if args.queues is not None:
        queues = _split(args.queues)
    else:
        try:
            queues = worker_queues(settings, None if args.profiles is None else _split(args.profiles))
        except ValueError as exc:
            refuse("worker", f"--profiles: {exc}")
            return 2
    if not queues:
        refuse("worker", "no queues to consume")
        return 2
    setup_logging.connect(_keep_our_logging, weak=False)
    bound_shutdown()
    logging.getLogger(__name__).info("consuming queues %s", ", ".join(queues))
    app = make_worker_app(settings, adb_port=args.adb_port)
    level = logging.getLevelName(logging.getLogger().level)
    argv = worker_argv(concurrency=args.concurrency, queues=",".join(queues), loglevel=level)
    if log_format() == "json":
        _celery_prints_through_our_logging()
        argv = ["--quiet", *argv]
    # worker_main exits the process through SystemExit with Celery's exit code.
    app.worker_main(argv)
    return 0


def _split(names: str) -> list[str]:
    return [name.strip() for name in names.split(",") if name.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run tasks from the task queue (Celery, threads)")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="runs at once (threads; default 4)"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--profiles",
        default=None,
        help="comma-separated device profiles whose queues to consume: 'default' (tasks with no named "
        "profile) and names from PHONEFLEET_POOL__PROFILES (default: all of them)",
    )
    which.add_argument(
        "--queues", default=None, help="comma-separated Celery queue names to consume, instead of --profiles"
    )
    parser.add_argument(
        "--adb-port", type=int, default=5037, help="the adb server the pool's phones use (default 5037)"
    )
    parser.set_defaults(func=_cmd_worker)
