"""An eval's report from its tasks' records: rates with Wilson intervals, costs, failures, three renderings.

Pure: ``build_report(records)`` takes one ``EvalRecord`` per task and answers the report as a dict
(the contents of ``report.json``); ``render_text``, ``render_json`` and ``render_html`` turn that dict
into a fixed-width terminal table, the JSON file and a self-contained HTML page. Nothing here reads
the database or the clock, so the runner (``phonefleet eval run``, ``POST /api/v1/evals``) and the
tests build the same report from the same records.

Rules (docs/trajectories.md, "The eval report"):

- A record marked ``infrastructure`` (the phone went unhealthy, the model server exhausted its
  retries, the worker was lost, after the task's own re-queues) is **not scored**: it is counted
  under ``infrastructure`` and left out of every rate, mean and failure group. Retries are counted
  over every record (a task retried once and then judged is scored, and its retry still shows).
- A scored task succeeded when the check said so (``success``); the agent's own "finish" counts for
  nothing: a task the agent finished whose check failed is grouped as ``wrong_final_state``.
- The interval is Wilson's score interval at 95% (z = 1.959964). With no scored task the rate is
  0 and the interval the whole [0, 1]: nothing is known.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INFRASTRUCTURE_REASONS",
    "Z_95",
    "EvalRecord",
    "build_report",
    "record_from_task",
    "render_html",
    "render_json",
    "render_text",
    "wilson_interval",
]

Z_95 = 1.959963984540054
"""The standard normal quantile for a two-sided 95% interval."""

WRONG_FINAL_STATE = "wrong_final_state"
"""The failure group of a task the agent finished whose check on the phone said no."""


INFRASTRUCTURE_REASONS = frozenset({
    "model_unavailable", "device_error", "worker_lost", "lease_lost", "worker_shutdown", "worker_error",
    "no_device", "evaluation_error",
})  # fmt: skip
"""A task's end reasons that the infrastructure caused (docs/control-plane.md, "Retries"): a task
that ends with one after its re-queues is counted apart, never scored."""


@dataclass(frozen=True)
class EvalRecord:
    """One task of an eval, as the runner saw it end."""

    template: str
    complexity: str
    model: str
    score: float  # the check's score in [0, 1]
    success: bool  # the check's verdict (score at or above the template's bar)
    status: str  # the agent's end: succeeded, failed, cancelled, timed_out
    reason: str | None = None  # the agent's reason (stuck, max_steps, …) when it gave one
    steps: int = 0
    wall_s: float = 0.0
    tokens: int = 0  # prompt + completion
    infrastructure: bool = False  # ended by the infrastructure, not the agent: never scored
    infrastructure_reason: str | None = None  # device_error, model_unavailable, worker_lost, …
    retried: int = 0  # times the infrastructure re-queued it
    reset: str | None = None  # how the phone was brought to the start state (pm_clear, factory, …)
    reset_s: float | None = None  # what that cost

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0 or math.isnan(self.score):
            raise ValueError(f"score must lie in [0, 1], not {self.score!r}")


def record_from_task(
    task: dict[str, Any],
    *,
    template: str,
    complexity: str,
    model: str,
    score: float,
    success: bool,
    reset: str | None = None,
    reset_s: float | None = None,
) -> EvalRecord:
    """The record of one eval task from the task as the API shows it (``GET /api/v1/tasks/{id}``)
    and the check's verdict: steps, tokens and wall time from its ``result``, re-queues from its
    ``attempts``, an infrastructure end from its ``reason``."""
    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    usage = result.get("usage") or {}
    reason = task.get("reason") or result.get("reason")
    status = str(task.get("status") or result.get("status") or "")
    infrastructure = status == "failed" and reason in INFRASTRUCTURE_REASONS
    return EvalRecord(
        template=template,
        complexity=complexity,
        model=model,
        score=0.0 if infrastructure else score,
        success=success and not infrastructure,
        status=status,
        reason=reason,
        steps=int(result.get("steps") or 0),
        wall_s=float(result.get("elapsed_s") or 0.0),
        tokens=int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0),
        infrastructure=infrastructure,
        infrastructure_reason=reason if infrastructure else None,
        retried=max(0, int(task.get("attempts") or 0) - 1),
        reset=reset,
        reset_s=reset_s,
    )


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval for ``successes`` out of ``n``; (0, 1) when ``n`` is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _rates(records: Sequence[EvalRecord]) -> dict[str, Any]:
    n = len(records)
    wins = sum(1 for r in records if r.success)
    low, high = wilson_interval(wins, n)
    return {
        "tasks": n,
        "successes": wins,
        "success_rate": round(wins / n, 4) if n else 0.0,
        "wilson_low": round(low, 4),
        "wilson_high": round(high, 4),
        "mean_score": round(statistics.fmean(r.score for r in records), 4) if n else 0.0,
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0}
    return {"mean": round(statistics.fmean(values), 3), "p50": round(statistics.median(values), 3)}


def _grouped(records: Sequence[EvalRecord], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[EvalRecord]] = defaultdict(list)
    for record in records:
        groups[str(getattr(record, key))].append(record)
    return [{"name": name, **_rates(groups[name])} for name in sorted(groups)]


def _failure_reason(record: EvalRecord) -> str:
    if record.status == "succeeded":
        return WRONG_FINAL_STATE
    return f"{record.status}: {record.reason}" if record.reason else record.status


def _failures(records: Sequence[EvalRecord]) -> list[dict[str, Any]]:
    groups: dict[str, list[EvalRecord]] = defaultdict(list)
    for record in records:
        if not record.success:
            groups[_failure_reason(record)].append(record)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        {"reason": reason, "count": len(items), "templates": sorted({r.template for r in items})}
        for reason, items in ordered
    ]


def _scored_section(scored: Sequence[EvalRecord]) -> dict[str, Any]:
    return {
        **_rates(scored),
        "templates": _grouped(scored, "template"),
        "by_complexity": _grouped(scored, "complexity"),
        "per_task": {
            "steps": _spread([r.steps for r in scored]),
            "wall_s": _spread([r.wall_s for r in scored]),
            "tokens": _spread([r.tokens for r in scored]),
        },
    }


def build_report(records: Iterable[EvalRecord]) -> dict[str, Any]:
    """The report (``report.json``'s contents) over every record, all models together and each apart."""
    everything = list(records)
    scored = [r for r in everything if not r.infrastructure]
    by_model: dict[str, list[EvalRecord]] = defaultdict(list)
    for record in scored:
        by_model[record.model].append(record)
    for record in everything:  # a model whose every task the infrastructure ended still shows
        by_model.setdefault(record.model, [])
    infra = [r for r in everything if r.infrastructure]
    resets: dict[str, list[float]] = defaultdict(list)
    for record in everything:
        if record.reset is not None:
            resets[record.reset].append(record.reset_s or 0.0)
    return {
        **_scored_section(scored),
        "models": [{"name": name, **_scored_section(by_model[name])} for name in sorted(by_model)],
        "failures": _failures(scored),
        "infrastructure": {
            "tasks": len(infra),
            "retried": sum(r.retried for r in everything),
            "reasons": dict(sorted(Counter(r.infrastructure_reason or "unknown" for r in infra).items())),
        },
        "reset": [
            {
                "method": method,
                "tasks": len(costs),
                "mean_s": round(statistics.fmean(costs), 3),
                "total_s": round(sum(costs), 3),
            }
            for method, costs in sorted(resets.items())
        ],
        "total_tasks": len(everything),
    }


def render_json(report: dict[str, Any]) -> str:
    """``report.json``: the report, indented, keys in the order built."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _pct(value: float) -> str:
    return f"{value * 100:5.1f}%"


def _interval(row: dict[str, Any]) -> str:
    return f"[{_pct(row['wilson_low'])}, {_pct(row['wilson_high'])}]"


def _cell(row: dict[str, Any] | None) -> str:
    if row is None or row["tasks"] == 0:
        return "-"
    return f"{row['successes']}/{row['tasks']} {_pct(row['success_rate'])} {_interval(row)}"


def _table(title: str, names: list[str], columns: list[tuple[str, dict[str, dict[str, Any]]]]) -> list[str]:
    cells = [[_cell(col.get(name)) for _, col in columns] for name in names]
    first = max([len(title), *(len(name) for name in names)])
    widths = [max([len(head), *(len(row[i]) for row in cells)]) for i, (head, _) in enumerate(columns)]
    lines = [
        "  ".join([title.ljust(first), *(h.ljust(w) for (h, _), w in zip(columns, widths, strict=True))])
    ]
    lines.append("  ".join(["-" * first, *("-" * w for w in widths)]))
    for name, row in zip(names, cells, strict=True):
        lines.append("  ".join([name.ljust(first), *(c.ljust(w) for c, w in zip(row, widths, strict=True))]))
    return [line.rstrip() for line in lines]


def render_text(report: dict[str, Any]) -> str:
    """A fixed-width table for a terminal: templates and complexities by model, then costs and failures."""
    models = report["models"] or [{"name": "all", **report}]
    lines: list[str] = []
    for section, title in (("templates", "template"), ("by_complexity", "complexity")):
        names = sorted({row["name"] for model in models for row in model[section]})
        columns = [(m["name"], {row["name"]: row for row in m[section]}) for m in models]
        lines += [*_table(title, names, columns), ""]
    overall = [(m["name"], {"overall": m}) for m in models]
    lines += [*_table("", ["overall"], overall), ""]
    lines.append(f"{'model':<20} {'steps mean/p50':>16} {'wall s mean/p50':>18} {'tokens mean/p50':>20}")
    for model in models:
        cost = model["per_task"]
        lines.append(
            f"{model['name'][:20]:<20} {cost['steps']['mean']:>8.1f}/{cost['steps']['p50']:<7.1f}"
            f"{cost['wall_s']['mean']:>10.1f}/{cost['wall_s']['p50']:<7.1f}"
            f"{cost['tokens']['mean']:>12.0f}/{cost['tokens']['p50']:<7.0f}".rstrip()
        )
    lines.append("")
    lines.append("failures:" if report["failures"] else "failures: none")
    for group in report["failures"]:
        lines.append(f"  {group['count']:>4}  {group['reason']}  ({', '.join(group['templates'])})")
    infra = report["infrastructure"]
    reasons = ", ".join(f"{k} {v}" for k, v in infra["reasons"].items()) or "none"
    lines.append(
        f"infrastructure (not scored): {infra['tasks']} tasks ({reasons}); {infra['retried']} retries"
    )
    for reset in report.get("reset", []):
        lines.append(f"reset {reset['method']}: {reset['tasks']} tasks, mean {reset['mean_s']:.2f} s, "
                     f"total {reset['total_s']:.1f} s")  # fmt: skip
    return "\n".join(lines) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d232a}
table{border-collapse:collapse;margin:1rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.bar{position:relative;width:14rem;height:1rem;background:#eef1f4}
.fill{position:absolute;left:0;top:0;bottom:0;background:#3a7bd5}
.ci{position:absolute;top:.4rem;height:.2rem;background:#1d232a}
.num{font-variant-numeric:tabular-nums}
"""


def _bar(row: dict[str, Any]) -> str:
    fill = row["success_rate"] * 100
    low, high = row["wilson_low"] * 100, row["wilson_high"] * 100
    return (
        f'<div class="bar" title="{fill:.1f}% [{low:.1f}%, {high:.1f}%]">'
        f'<div class="fill" style="width:{fill:.1f}%"></div>'
        f'<div class="ci" style="left:{low:.1f}%;width:{high - low:.1f}%"></div></div>'
    )


def _rows_html(title: str, rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(row['name'])}</td><td class=num>{row['successes']}/{row['tasks']}</td>"
        f"<td class=num>{_pct(row['success_rate'])}</td><td class=num>{_interval(row)}</td>"
        f"<td>{_bar(row)}</td></tr>"
        for row in rows
    )
    return (
        f"<table><tr><th>{html.escape(title)}</th><th>passed</th><th>rate</th><th>Wilson 95%</th>"
        f"<th></th></tr>{body}</table>"
    )


def render_html(report: dict[str, Any], *, title: str = "Eval report") -> str:
    """One self-contained page (inline CSS, no script, no external asset)."""
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>{report['successes']}/{report['tasks']} scored tasks passed: <b>{_pct(report['success_rate'])}</b> "
        f"(Wilson 95% {_interval(report)}).</p>",
        _rows_html("model", [{**m, "name": m["name"]} for m in report["models"]]),
    ]
    for model in report["models"]:
        cost = model["per_task"]
        parts.append(
            f"<h2>{html.escape(model['name'])}</h2>"
            f"<p>per task: steps {cost['steps']['mean']:.1f} (p50 {cost['steps']['p50']:.1f}), "
            f"wall {cost['wall_s']['mean']:.1f} s (p50 {cost['wall_s']['p50']:.1f} s), "
            f"tokens {cost['tokens']['mean']:.0f} (p50 {cost['tokens']['p50']:.0f})</p>"
        )
        parts.append(_rows_html("template", model["templates"]))
        parts.append(_rows_html("complexity", model["by_complexity"]))
    failures = "".join(
        f"<tr><td class=num>{g['count']}</td><td>{html.escape(g['reason'])}</td>"
        f"<td>{html.escape(', '.join(g['templates']))}</td></tr>"
        for g in report["failures"]
    )
    parts.append(
        f"<h2>Failures</h2><table><tr><th>tasks</th><th>reason</th><th>templates</th></tr>{failures}</table>"
    )
    infra = report["infrastructure"]
    reasons = "".join(f"<li>{html.escape(k)}: {v}</li>" for k, v in infra["reasons"].items())
    parts.append(
        f"<h2>Infrastructure (not scored)</h2><p>{infra['tasks']} tasks ended by the infrastructure; "
        f"{infra['retried']} retries in all.</p><ul>{reasons}</ul></body></html>"
    )
    return "".join(parts) + "\n"
