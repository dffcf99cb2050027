"""``phonefleet eval run SUITE --model NAME [--model NAME2 …]``: run a suite on the fleet, through the API.

The API is found as ``phonefleet task`` finds it (``PHONEFLEET_URL`` / ``PHONEFLEET_API_KEY``, else
what ``phonefleet up`` wrote; ``task.py``). The eval is created with ``POST /api/v1/evals`` and
followed with ``GET /api/v1/evals/{id}`` (a progress line on stderr) until every task ended or
``--wait-timeout`` ran out; then ``DIR/report.json`` is written and a table printed (docs/evals.md).
Exit codes: 0 the eval ended (whatever its rate), 1 an API error or the wait ran out, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.cli.task import add_api_arguments, run_against_api

_PROG = "phonefleet eval"


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = round(width * done / total) if total else width
    return "#" * filled + "." * (width - filled)


def _pct(value: float | None) -> str:
    return "  -  " if value is None else f"{100 * value:5.1f}%"


def progress_line(report: dict[str, Any], elapsed_s: float) -> str:
    return (f"[{_bar(report['done'], report['tasks'])}] {report['done']}/{report['tasks']} "
            f"success {_pct(report['success_rate'])} ({report['successes']}/{report['runs']}) "
            f"infra {report['infra']}  {elapsed_s:5.0f}s")  # fmt: skip


def report_json(report: dict[str, Any]) -> dict[str, Any]:
    """``report.json``: the overall rate and interval, and the same per template (docs/evals.md)."""
    keep = ("success_rate", "wilson_low", "wilson_high", "runs", "successes", "mean_score", "infra", "pending")
    return {
        "eval_id": report["id"], "suite": report["suite"], "models": report["models"], "repeat": report["repeat"],
        "seed": report["seed"], "parallel": report["parallel"], **{k: report[k] for k in keep},
        "by_model": report["by_model"], "by_complexity": report["by_complexity"], "reset": report["reset"],
        "templates": [{"template": t["template"], "category": t["category"], "complexity": t["complexity"],
                       **{k: t[k] for k in keep}, "by_model": t["by_model"]} for t in report["templates"]],
        "tasks": report["task_list"],
    }  # fmt: skip


def table(report: dict[str, Any]) -> str:
    models = report["models"]
    head = f"{'template':28s} {'cat':12s} " + " ".join(f"{m[:18]:>18s}" for m in models)
    lines = [head, "-" * len(head)]
    for t in report["templates"]:
        cells = []
        for m in models:
            r = t["by_model"][m]
            cells.append(f"{r['successes']}/{r['runs']} {_pct(r['success_rate'])}".rjust(18))
        lines.append(f"{t['template'][:28]:28s} {str(t['category'])[:12]:12s} " + " ".join(cells))
    lines.append("-" * len(head))
    for m in models:
        r = report["by_model"][m]
        lines.append(f"{m}: {r['successes']}/{r['runs']} = {_pct(r['success_rate'])} "
                     f"(95% CI {_pct(r['wilson_low'])}–{_pct(r['wilson_high'])}), infra {r['infra']}")  # fmt: skip
    reset = report["reset"]
    if reset.get("runs"):
        lines.append(f"reset: {reset['method']}; {reset['initialize_s_mean']} s per task on average")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from orchestrator.client import PhoneFleetClient

    with PhoneFleetClient(args.url, args.api_key) as client:
        report = client.create_eval(
            args.suite, args.model, repeat=args.repeat, seed=args.seed, parallel=args.parallel,
            templates=args.templates.split(",") if args.templates else None, max_steps=args.max_steps,
            timeout_s=args.timeout,
        )  # fmt: skip
        print(f"{_PROG}: eval {report['id']}: {report['tasks']} tasks", file=sys.stderr)
        started = time.monotonic()
        while report["done"] < report["tasks"]:
            if time.monotonic() - started > args.wait_timeout:
                print(f"\n{_PROG}: gave up waiting after {args.wait_timeout:g} s; the eval goes on "
                      f"(GET /api/v1/evals/{report['id']})", file=sys.stderr)  # fmt: skip
                break
            print("\r" + progress_line(report, time.monotonic() - started), end="", file=sys.stderr, flush=True)
            time.sleep(args.poll)
            report = client.get_eval(report["id"])
        print("\r" + progress_line(report, time.monotonic() - started), file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n")
    print(table(report))
    print(f"{_PROG}: wrote {out / 'report.json'}", file=sys.stderr)
    return 0 if report["done"] == report["tasks"] else 1


def _cmd_eval(args: argparse.Namespace) -> int:
    return run_against_api(args, _PROG, _run)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="run a suite of task templates on the fleet and report its success rate")
    actions = parser.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run a suite (POST /api/v1/evals), follow it, write DIR/report.json")
    add_api_arguments(run)
    run.add_argument("suite", help='the suite, e.g. "builtin"')
    run.add_argument("--model", action="append", required=True,
                     help='a model endpoint\'s name, or "scripted" (the templates\' scripted solutions); repeatable')
    run.add_argument("--parallel", type=int, default=None, help="at most N of its tasks run at once")
    run.add_argument("--repeat", type=int, default=1, help="runs of each template per model (default 1)")
    run.add_argument("--seed", type=int, default=0, help="the same seed gives the same tasks (default 0)")
    run.add_argument("--templates", default=None, help="only these templates, comma-separated")
    run.add_argument("--max-steps", type=int, default=30, help="each task's max_steps (default 30)")
    run.add_argument("--timeout", type=int, default=900, help="each task's timeout_s (default 900)")
    run.add_argument("--out", default="eval-out", help="the folder for report.json (default eval-out)")
    run.add_argument("--poll", type=float, default=2.0, help="seconds between progress reads (default 2)")
    run.add_argument("--wait-timeout", type=float, default=3600.0, help="give up following after this long")
    run.set_defaults(func=_cmd_eval)
