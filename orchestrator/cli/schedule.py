"""``phonefleet schedule``: schedules through the REST API (``orchestrator.client``, docs/api.md "Schedules").

``create "INSTRUCTION" (--cron EXPR [--timezone TZ] | --every SECONDS)`` (and the task's
``--max-steps``, ``--timeout``, ``--max-tries``, ``--subgoal``…, the schedule's ``--catch-up``,
``--overlap``, ``--paused``), ``list``, ``show ID``, ``pause ID``, ``resume ID``, ``delete ID``,
``runs ID`` (its tasks, newest first). Every action takes ``--url``, ``--api-key`` and ``--json``,
and finds the API and the key as ``phonefleet task`` does (``task.py``, "Which API").

Exit codes: 0 ok; 1 the API answered an error or could not be reached (message on stderr); 2 usage.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orchestrator.cli.task import add_api_arguments, add_chain_arguments, run_against_api, task_line

_PROG = "phonefleet schedule"


def _cadence(schedule: dict[str, Any]) -> str:
    if schedule.get("cron"):
        return f"cron={json.dumps(schedule['cron'])} tz={schedule.get('timezone')}"
    return f"every={schedule.get('interval_s')}s"


def schedule_line(schedule: dict[str, Any]) -> str:
    """One schedule on one line: id, state, cadence, next due time, last run, instruction."""
    state = "paused" if schedule.get("paused") else "active"
    if schedule.get("paused_reason"):
        state += f"({schedule['paused_reason']})"
    parts = [str(schedule.get("id")), state, _cadence(schedule), f"next={schedule.get('next_due_at')}"]
    last = schedule.get("last_run")
    parts.append(f"last={last['status']}" if last else "last=none")
    instruction = (schedule.get("task") or {}).get("instruction") or ""
    parts.append(
        json.dumps(instruction[:59] + "…" if len(instruction) > 60 else instruction, ensure_ascii=False)
    )
    return "  ".join(parts)


def _show(schedule: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(schedule, ensure_ascii=False) if as_json else schedule_line(schedule))


def _task_body(args: argparse.Namespace) -> dict[str, Any]:
    fields = {"instruction": args.instruction, "max_steps": args.max_steps, "timeout_s": args.timeout,
              "max_tries": args.max_tries, "subgoals": args.subgoal, "on_step_failure": args.on_step_failure}  # fmt: skip
    return {name: value for name, value in fields.items() if value is not None}


def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import PhoneFleetClient

    with PhoneFleetClient(args.url, args.api_key) as client:
        if args.action == "create":
            schedule = client.create_schedule(
                _task_body(args), cron=args.cron, timezone=args.timezone, interval_s=args.every,
                catch_up=args.catch_up, overlap=args.overlap, paused=True if args.paused else None,
            )  # fmt: skip
            _show(schedule, args.json)
        elif args.action == "list":
            for schedule in client.schedules(limit=args.limit):
                _show(schedule, args.json)
        elif args.action == "show":
            _show(client.get_schedule(args.id), args.json)
        elif args.action == "pause":
            _show(client.pause_schedule(args.id), args.json)
        elif args.action == "resume":
            _show(client.resume_schedule(args.id), args.json)
        elif args.action == "delete":
            client.delete_schedule(args.id)
            print(json.dumps({"deleted": args.id}) if args.json else f"{args.id}  deleted")
        else:  # runs
            for task in client.schedule_runs(args.id, limit=args.limit):
                print(json.dumps(task, ensure_ascii=False) if args.json else task_line(task))
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    return run_against_api(args, _PROG, _run)


def register(sub: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_api_arguments(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON")

    parser = sub.add_parser("schedule", help="create, list, pause and delete schedules through the REST API")
    actions = parser.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[common], help="create a schedule (prints it)")
    create.add_argument("instruction", help="the task each run carries out")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", default=None, help='a cron expression, e.g. "0 9 * * 1-5"')
    when.add_argument("--every", type=int, default=None, metavar="SECONDS", help="a run every SECONDS")
    create.add_argument("--timezone", default=None, help="the IANA time zone of --cron (default UTC)")
    create.add_argument("--catch-up", choices=("skip", "run_once"), default=None,
                        help="runs missed while the system was down: skip them or run once (default skip)")  # fmt: skip
    create.add_argument("--overlap", choices=("skip", "queue"), default=None,
                        help="a run still going when the next is due: skip the next or queue it (default skip)")  # fmt: skip
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument(
        "--max-steps", type=int, default=None, help="each run's max_steps (server default 30)"
    )
    create.add_argument("--timeout", type=int, default=None, help="each run's timeout_s (server default 600)")
    create.add_argument("--max-tries", type=int, default=None, help="each run's max_tries (1–5)")
    add_chain_arguments(create)

    list_ = actions.add_parser("list", parents=[common], help="list schedules, newest first (all pages)")
    list_.add_argument("--limit", type=int, default=50, help="schedules per page fetched, 1–100 (default 50)")
    for name, what in (("show", "show a schedule"), ("pause", "pause a schedule: no runs until resumed"),
                       ("resume", "resume a paused schedule"),
                       ("delete", "delete a schedule (its runs stay, as tasks)")):  # fmt: skip
        action = actions.add_parser(name, parents=[common], help=what)
        action.add_argument("id")
    runs = actions.add_parser("runs", parents=[common], help="a schedule's runs (tasks), newest first")
    runs.add_argument("id")
    runs.add_argument("--limit", type=int, default=50, help="runs per page fetched, 1–100 (default 50)")

    parser.set_defaults(func=_cmd_schedule)
