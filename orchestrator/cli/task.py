"""``phonefleet task``: submit, follow and cancel tasks through the REST API (``orchestrator.client``).

``submit "INSTRUCTION" [--subgoal TEXT]… [--wait]``, ``status ID``, ``wait ID``, ``cancel ID``, ``list [--status S]``,
``trajectory ID [-o FILE]`` (the zip of task.json, steps.jsonl and screenshots; default task-ID.zip).
Every action takes ``--url``, ``--api-key`` and ``--json`` (the API's JSON instead of one line per task).

**Which API** (``--url`` unset), the way ``phonefleet up`` found it: ``PHONEFLEET_URL``; else the URL
``phonefleet up`` wrote to ``{data_dir}/api-url`` while it runs (its port may be one the OS chose);
else ``http://{api.host}:{api.port}`` from the settings (``PHONEFLEET_API__HOST``/``__PORT``; a host of
0.0.0.0 is reached at 127.0.0.1). **Which key** (``--api-key`` unset): ``PHONEFLEET_API_KEY``; else
the admin key ``phonefleet up`` keeps in ``{data_dir}/admin-api-key``.

``submit --wait`` and ``wait`` follow the task (``follow.py``): a line per step and status change as
they happen (the events WebSocket; polling when it cannot be used), why the task waits, and — at a
terminal — a y/N prompt for a confirmation and a prompt for the agent's question.

Exit codes: 0 ok (for ``submit --wait`` and ``wait``: the task succeeded); 1 the task failed, was
cancelled or timed out, the wait ran out, or the API answered an error (message on stderr); 2 usage;
130 interrupted (Ctrl-C) while following: the task goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8000"
_PROG = "phonefleet task"


def default_url(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """The API's base URL when ``--url`` is not given (module docstring, "Which API"), and where it
    came from (said when the API cannot be reached)."""
    env = os.environ if environ is None else environ
    if env.get("PHONEFLEET_URL"):
        return env["PHONEFLEET_URL"], "PHONEFLEET_URL"
    settings = _settings()
    if settings is None:
        return DEFAULT_URL, "the default"
    from orchestrator.cli.up import URL_FILE

    path = settings.data_dir / URL_FILE
    try:
        written = path.read_text().strip()
    except OSError:
        written = ""
    if written:
        return written, f"{path}, written by phonefleet up: is it still running?"
    if settings.api.port == 0:  # the OS picks it at each start: only up's file can say which
        return DEFAULT_URL, "the default (api.port is 0 and no phonefleet up runs here)"
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "") else settings.api.host
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
    return f"http://{host}:{settings.api.port}", "the settings api.host and api.port"


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url`` and ``--api-key``, for every command that calls the API (``task``, ``mcp``)."""
    parser.add_argument(
        "--url", default=None,
        help="the API's base URL (default: PHONEFLEET_URL, else the URL phonefleet up wrote to "
        "{data_dir}/api-url, else http://{api.host}:{api.port} from the settings)",
    )  # fmt: skip
    parser.add_argument(
        "--api-key", default=None,
        help="API key pf_… (default: PHONEFLEET_API_KEY, else phonefleet up's {data_dir}/admin-api-key)",
    )  # fmt: skip


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    """``--subgoal`` (repeated, in order) and ``--on-step-failure``: a task chain (docs/api.md)."""
    parser.add_argument(
        "--subgoal", action="append", default=None, metavar="TEXT",
        help="a subgoal of a task chain, run in the order given (repeat the option for each)",
    )  # fmt: skip
    parser.add_argument(
        "--on-step-failure", choices=("stop", "ask"), default=None,
        help="what a failed subgoal does: stop the chain (default) or ask the person",
    )  # fmt: skip


def default_api_key(environ: dict[str, str] | None = None) -> str:
    """The API key when ``--api-key`` is not given: PHONEFLEET_API_KEY, else the key ``up`` keeps."""
    env = os.environ if environ is None else environ
    if env.get("PHONEFLEET_API_KEY"):
        return env["PHONEFLEET_API_KEY"]
    settings = _settings()
    if settings is None:
        return ""
    from orchestrator.cli.up import KEY_FILE

    try:
        return (settings.data_dir / KEY_FILE).read_text().strip()
    except OSError:  # none, or not ours to read
        return ""


def _settings() -> Settings | None:  # imported lazily: the CLI's start-up stays light
    from pydantic import ValidationError

    from orchestrator.settings import load_settings

    try:
        return load_settings()
    except ValidationError:
        return None  # the server's settings are broken; this client only needed a hint from them


def task_line(task: dict[str, Any]) -> str:
    instruction = task.get("instruction") or ""
    if len(instruction) > 60:
        instruction = instruction[:59] + "…"
    parts = [str(task.get("id")), str(task.get("status"))]
    if task.get("reason"):
        parts.append(f"reason={task['reason']}")
    if task.get("cancel_requested") and task.get("status") != "cancelled":
        parts.append("cancel_requested")
    if task.get("waiting"):  # why it is not moving (docs/api.md, "Why a task waits")
        parts.append(f"waiting={task['waiting']['kind']}")
    parts.append(json.dumps(instruction, ensure_ascii=False))
    return "  ".join(parts)


def _show(task: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(task, ensure_ascii=False))
        return
    print(task_line(task))
    if task.get("message"):
        print(f"  message: {task['message']}")


def _final_code(task: dict[str, Any]) -> int:
    return 0 if task.get("status") == "succeeded" else 1


def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import PhoneFleetClient

    with PhoneFleetClient(args.url, args.api_key) as client:
        if args.action == "submit":
            task = client.submit(
                args.instruction, max_steps=args.max_steps, timeout_s=args.timeout,
                subgoals=args.subgoal or None, on_step_failure=args.on_step_failure,
            )  # fmt: skip
            if not args.wait:
                _show(task, args.json)
                return 0
            if not args.json:
                print(task_line(task), file=sys.stderr)  # the id, before a long wait
            wait_s = args.wait_timeout or (args.timeout or 600) + 300
            task = _follow(client, args, task["id"], wait_s)
            _show(task, args.json)
            return _final_code(task)
        if args.action == "status":
            _show(client.get(args.id), args.json)
            return 0
        if args.action == "wait":
            task = _follow(client, args, args.id, args.timeout)
            _show(task, args.json)
            return _final_code(task)
        if args.action == "cancel":
            _show(client.cancel(args.id), args.json)
            return 0
        if args.action == "trajectory":
            path = client.download_trajectory(args.id, args.output or f"task-{args.id}.zip")
            size = path.stat().st_size
            print(json.dumps({"path": str(path), "bytes": size}) if args.json else f"{path}  {size} bytes")
            return 0
        for task in client.list(status=args.status, limit=args.limit):
            if args.json:
                print(json.dumps(task, ensure_ascii=False))  # one object a line
            else:
                print(task_line(task))
        return 0


def _follow(client: Any, args: argparse.Namespace, task_id: str, timeout_s: float) -> dict[str, Any]:
    from orchestrator.cli.follow import follow

    try:
        return follow(
            client, args.url, args.api_key, task_id, timeout_s=timeout_s, poll_s=args.poll,
            interactive=sys.stdin.isatty() and not args.no_input,
        )  # fmt: skip
    except KeyboardInterrupt:
        print(f"\n{_PROG}: interrupted; the task goes on (follow it with: phonefleet task wait {task_id})",
              file=sys.stderr)  # fmt: skip
        raise


def run_against_api(args: argparse.Namespace, prog: str, body: Callable[[argparse.Namespace], int]) -> int:
    """Find the API and the key (``--url``/``--api-key`` or the module docstring's defaults), run
    ``body(args)``, and turn what the API or the network raised into a line on stderr and an exit
    code: the one runner of every command that calls the API (``task``, ``schedule``)."""
    import httpx

    from orchestrator.client import PhoneFleetAPIError

    source = "--url"
    if not args.url:
        args.url, source = default_url()
    args.api_key = args.api_key or default_api_key()
    if not args.api_key:
        print(f"{prog}: no API key: pass --api-key or set PHONEFLEET_API_KEY (or run phonefleet up, "
              "which keeps one in its data directory)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        return body(args)
    except KeyboardInterrupt:  # Ctrl-C while following (said so there) or during a request
        return 130
    except PhoneFleetAPIError as exc:
        print(f"{prog}: {exc.status} {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(
            f"{prog}: cannot reach {args.url} (from {source}): {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return 1
    except OSError as exc:  # a file could not be written
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1


def _run_waiting(args: argparse.Namespace) -> int:
    from orchestrator.client import TaskWaitTimeout

    try:
        return _run(args)
    except TaskWaitTimeout as exc:  # a TimeoutError, so an OSError: said here, before the runner's
        if args.json:
            print(json.dumps(exc.task, ensure_ascii=False))
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1


def _cmd_task(args: argparse.Namespace) -> int:
    return run_against_api(args, _PROG, _run_waiting)


def register(sub: argparse._SubParsersAction) -> None:
    # The URL and key are not fields of Settings (those configure the server's processes): resolved
    # when the command runs (default_url, default_api_key), so other commands never read settings.
    common = argparse.ArgumentParser(add_help=False)
    add_api_arguments(common)
    common.add_argument("--json", action="store_true", help="print the API's JSON")

    parser = sub.add_parser("task", help="submit, follow and cancel tasks through the REST API")
    actions = parser.add_subparsers(dest="action", required=True)

    submit = actions.add_parser("submit", parents=[common], help="submit a task (prints it)")
    submit.add_argument("instruction")
    submit.add_argument("--max-steps", type=int, default=None, help="1–100 (server default 30)")
    submit.add_argument(
        "--timeout", type=int, default=None, help="the task's timeout_s, 10–3600 (server default 600)"
    )
    add_chain_arguments(submit)
    submit.add_argument(
        "--wait", action="store_true", help="wait for a final status; exit 0 only if succeeded"
    )
    submit.add_argument(
        "--wait-timeout", type=float, default=None, help="seconds to wait (default: task timeout + 300)"
    )
    submit.add_argument(
        "--poll", type=float, default=1.0, help="seconds between polls without the events socket (default 1)"
    )
    submit.add_argument("--no-input", action="store_true", help="never prompt, even at a terminal")

    status = actions.add_parser("status", parents=[common], help="show a task")
    status.add_argument("id")

    wait = actions.add_parser(
        "wait", parents=[common], help="wait for a final status; exit 0 only if succeeded"
    )
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")
    wait.add_argument(
        "--poll", type=float, default=1.0, help="seconds between polls without the events socket (default 1)"
    )
    wait.add_argument("--no-input", action="store_true", help="never prompt, even at a terminal")

    cancel = actions.add_parser("cancel", parents=[common], help="cancel a task")
    cancel.add_argument("id")

    trajectory = actions.add_parser(
        "trajectory",
        parents=[common],
        help="download the trajectory zip (task.json, steps.jsonl, screenshots/)",
    )
    trajectory.add_argument("id")
    trajectory.add_argument("-o", "--output", default=None, help="the zip to write (default task-ID.zip)")

    list_ = actions.add_parser("list", parents=[common], help="list tasks, newest first (all pages)")
    list_.add_argument("--status", default=None, help="only tasks in this status (queued, running, …)")
    list_.add_argument("--limit", type=int, default=50, help="tasks per page fetched, 1–100 (default 50)")

    parser.set_defaults(func=_cmd_task)
