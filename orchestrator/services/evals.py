"""Evals: a suite of task templates run with one or more models, repeated, on the fleet (docs/evals.md).

``EvalService.create`` expands a suite into tasks — for each model, repeat and template, the
template's instruction with parameters drawn from a seed of its own (``worker.eval.suites.plan``:
the one import of the worker's catalog from here, an import-linter exception; the catalog imports
neither the agent nor the run) — each carrying its ``evaluation`` and ``eval_id``, in one
transaction with the eval row and the tasks' ``task.created`` events, then enqueues them. The worker
evaluates each next to its phone (``worker/eval/evaluation.py``) and writes the score into the
task's ``result.evaluation``. ``get`` reads an eval and its tasks and sums them up (``summary``):
tasks that the infrastructure ended (``INFRA_REASONS``, after its own retries: docs/control-plane.md
"Retries") are counted apart and never scored as the agent's failures.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from orchestrator.db import Eval, Task, TaskStatus, WaitingKind, utcnow, waiting
from orchestrator.db.database import Database
from orchestrator.db.quotas import eval_wait_message
from orchestrator.errors import EvalNotFound, InvalidEval, UnknownModelEndpoint
from orchestrator.model_endpoints import endpoint_for
from orchestrator.notifier import EventSignal
from orchestrator.queue import TaskQueue
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal
from orchestrator.services.eval_report import (
    INFRASTRUCTURE_REASONS,
    EvalRecord,
    build_report,
    wilson_interval,
)
from orchestrator.services.task_creation import created_event, enqueue_created, new_task
from orchestrator.settings import ModelSettings
from worker.eval.suites import plan

__all__ = ["INFRA_REASONS", "EvalService", "EvalSpec", "summary"]

# End reasons of a task that the infrastructure, not the agent, ended (after its retries): the report's list.
INFRA_REASONS = INFRASTRUCTURE_REASONS
MAX_TASKS = 2000  # one eval's tasks at most (models × repeats × templates)


# A model endpoint's name as the tasks' `model` holds it ("scripted", "autoglm-phone-9b", "org/model:tag").
ModelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")]
TemplateName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class EvalSpec(BaseModel):
    """An eval (``POST /api/v1/evals``)."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description='The suite to run, e.g. "builtin".')
    models: list[ModelName] = Field(
        min_length=1, max_length=8,
        description='Model names, one column each in the report: "scripted" (the reference model playing each '
        "template's scripted solution) or a model endpoint's name; each becomes its tasks' `model`.",
    )  # fmt: skip
    repeat: int = Field(default=1, ge=1, le=20, description="Runs of each template per model.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="The same seed gives the same tasks.")
    templates: list[TemplateName] | None = Field(default=None, min_length=1, max_length=200,
                                                 description="Only these templates.")  # fmt: skip
    parallel: int | None = Field(default=None, ge=1, le=1000, description="At most this many of the eval's tasks run at once (None: as the fleet allows).")
    max_steps: int = Field(default=30, ge=1, le=200, description="Each task's max_steps.")
    timeout_s: int = Field(default=900, ge=30, le=3600, description="Each task's timeout_s.")


def _endpoint(name: str, models: ModelSettings | None) -> str:
    """The endpoint name a model of the eval names (``model_endpoints.endpoint_for``); ``InvalidEval``
    for a raw URL or a name no endpoint has (``phonefleet up`` defines ``scripted``)."""
    if "://" in name or not name.strip() or len(name) > 200:
        raise InvalidEval(
            f"model {name[:80]!r}: name a model endpoint or \"scripted\" (a raw URL is not accepted here)",
            context={"model": name[:200]},
        )
    if models is None:
        return name
    try:
        return endpoint_for(name, models).name
    except UnknownModelEndpoint as exc:
        raise InvalidEval(str(exc), context={"model": name, "known": exc.known}) from exc


class EvalService:
    """The caller's tenant's evals."""

    def __init__(
        self, db: Database, queue: TaskQueue, *, notifier: EventSignal | None = None, models: ModelSettings | None = None
    ) -> None:
        self.db, self.queue, self.notifier, self.models = db, queue, notifier, models

    async def create(self, principal: Principal, spec: EvalSpec) -> tuple[Eval, list[Task]]:
        """The eval and its queued tasks; raises ``InvalidEval`` (unknown suite, template or model)."""
        spec = spec.model_copy(update={"models": [_endpoint(model, self.models) for model in spec.models]})
        try:
            runs = plan(spec.suite, seed=spec.seed, repeat=spec.repeat, templates=spec.templates)
        except LookupError as exc:
            raise InvalidEval(str(exc.args[0]), context={"suite": spec.suite}) from None
        if len(runs) * len(spec.models) > MAX_TASKS:
            raise InvalidEval(f"{len(runs) * len(spec.models)} tasks; an eval may have at most {MAX_TASKS}")
        row = Eval(id=uuid.uuid4(), created_at=utcnow(), tenant_id=principal.tenant_id, created_by=principal.key_id,
                   suite=spec.suite, models=list(spec.models), templates=spec.templates, repeat=spec.repeat,
                   seed=spec.seed, parallel=spec.parallel)  # fmt: skip
        tasks = []
        # Repeat by repeat, model by model: the first results cover every template and model.
        for run in runs:
            for model in spec.models:
                evaluation = {k: run[k] for k in ("suite", "template", "params", "seed", "repeat", "category",
                                                  "complexity")}  # fmt: skip
                fields = {"instruction": run["instruction"], "device_profile": None, "max_steps": spec.max_steps,
                          "max_tries": 1, "timeout_s": spec.timeout_s, "model": model, "webhook_url": None,
                          "metadata": {"eval_id": str(row.id), "template": run["template"]},
                          "retry_after_acting": True, "eval_id": row.id, "evaluation": evaluation}  # fmt: skip
                tasks.append(new_task(tenant_id=principal.tenant_id, created_by=principal.key_id, fields=fields))
        # `parallel`: only the first N are sent now; the rest wait (kind quota), and each task's end
        # sends the next (the claim enforces it: orchestrator/db/quotas.py, eval_refusal).
        held_back = tasks[spec.parallel:] if spec.parallel is not None else []
        for task in held_back:
            task.waiting = waiting(WaitingKind.QUOTA, eval_wait_message(
                f"parallel: the eval runs at most {spec.parallel} tasks at once"), task.created_at)  # fmt: skip
        async with self.db.transaction(write=True) as db_session:
            db_session.add(row)
            await db_session.flush()
            db_session.add_all(tasks)
            await db_session.flush()
            db_session.add_all([created_event(task) for task in tasks])
            await record_audit(db_session, principal, "eval.create", target=f"eval:{row.id}",
                               detail={"suite": spec.suite, "models": list(spec.models), "tasks": len(tasks)})  # fmt: skip
        for task in tasks[: len(tasks) - len(held_back)]:
            await enqueue_created(self.db, self.queue, self.notifier, task)
        return row, tasks

    async def get(self, principal: Principal, eval_id: uuid.UUID) -> tuple[Eval, list[Task]]:
        """The eval and its tasks (oldest first); raises ``EvalNotFound`` (also for another tenant's id)."""
        async with self.db.transaction() as db_session:
            row = await db_session.get(Eval, eval_id)
            if row is None or row.tenant_id != principal.tenant_id:
                raise EvalNotFound(eval_id)
            tasks = (await db_session.scalars(
                select(Task).where(Task.eval_id == eval_id).order_by(Task.created_at, Task.id)
            )).all()  # fmt: skip
            return row, list(tasks)

    async def list(self, principal: Principal, limit: int = 50) -> list[tuple[Eval, list[Task]]]:
        """The tenant's newest evals with their tasks."""
        async with self.db.transaction() as db_session:
            rows = (await db_session.scalars(
                select(Eval).where(Eval.tenant_id == principal.tenant_id)
                .order_by(Eval.created_at.desc(), Eval.id.desc()).limit(limit)
            )).all()  # fmt: skip
            ids = [r.id for r in rows]
            tasks = (await db_session.scalars(select(Task).where(Task.eval_id.in_(ids)))).all() if ids else []
        by_eval: dict[uuid.UUID, list[Task]] = defaultdict(list)
        for task in tasks:
            by_eval[task.eval_id].append(task)  # type: ignore[index]
        return [(r, by_eval[r.id]) for r in rows]



def task_outcome(task: Task) -> dict[str, Any]:
    """One task as the report counts it: ``pending``, ``infra`` or ``scored`` (with its score)."""
    evaluation = (task.result or {}).get("evaluation") or {}
    spec = task.evaluation or {}
    out: dict[str, Any] = {
        "task_id": str(task.id), "template": spec.get("template"), "repeat": spec.get("repeat"), "model": task.model,
        "category": spec.get("category"), "complexity": spec.get("complexity"),
        "status": str(task.status), "reason": task.reason, "attempts": task.attempts,
        "steps": (task.result or {}).get("steps"), "elapsed_s": (task.result or {}).get("elapsed_s"),
        "usage": (task.result or {}).get("usage"), "reset": evaluation.get("reset"),
    }  # fmt: skip
    if not TaskStatus(task.status).is_final:
        return out | {"outcome": "pending", "score": None}
    if "score" in evaluation:
        return out | {"outcome": "scored", "score": evaluation["score"], "success": bool(evaluation.get("success"))}
    if task.reason in INFRA_REASONS or "error" in evaluation:
        return out | {"outcome": "infra", "score": None}
    # Ended before the phone could be judged (cancelled before its run, timed out waiting): the agent's.
    return out | {"outcome": "scored", "score": 0.0, "success": False}


def _record(item: dict[str, Any]) -> EvalRecord:
    """An ended task's outcome (``task_outcome``) as the report builder counts it."""
    reset = item.get("reset") or {}
    usage = item.get("usage") or {}
    infra = item["outcome"] == "infra"
    return EvalRecord(
        template=str(item["template"]), complexity=str(item["complexity"]), model=str(item["model"]),
        score=0.0 if infra else float(item["score"]), success=bool(item.get("success")), status=item["status"],
        reason=item["reason"], steps=int(item["steps"] or 0), wall_s=float(item["elapsed_s"] or 0.0),
        tokens=int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0),
        infrastructure=infra, infrastructure_reason=(item["reason"] or "evaluation_error") if infra else None,
        retried=max(0, int(item["attempts"] or 0) - 1), reset=reset.get("method"), reset_s=reset.get("initialize_s"),
    )  # fmt: skip


def _rate(section: dict[str, Any] | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A group's rates as ``build_report`` computed them (``section``: its row, None when none of
    its tasks was scored), with the group's infrastructure ends and pending tasks counted beside."""
    scored = section["tasks"] if section else 0
    low, high = (section["wilson_low"], section["wilson_high"]) if section else wilson_interval(0, 0)
    return {
        "runs": scored, "successes": section["successes"] if section else 0,
        "success_rate": section["success_rate"] if scored else None, "wilson_low": low, "wilson_high": high,
        "mean_score": section["mean_score"] if scored else None,
        "infra": sum(1 for i in items if i["outcome"] == "infra"),
        "pending": sum(1 for i in items if i["outcome"] == "pending"),
    }  # fmt: skip


def _named(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def summary(row: Eval, tasks: list[Task]) -> dict[str, Any]:
    """The eval's report: overall, per model, per template (with its category and complexity) and per
    complexity, each with its success rate and Wilson 95 % interval; reset costs; infra apart.

    The rates are ``eval_report.build_report``'s (the one place they are computed, as for
    ``report.json``); this adds what only the database knows: the eval's fields, pending tasks, each
    template's category, and every task's outcome (``task_list``)."""
    items = [task_outcome(t) for t in tasks]
    report = build_report(_record(i) for i in items if i["outcome"] != "pending")
    models = _named(report["models"])
    out = {"id": str(row.id), "suite": row.suite, "models": row.models, "repeat": row.repeat, "seed": row.seed,
           "parallel": row.parallel, "created_at": row.created_at.isoformat(), "tasks": len(items),
           "done": sum(1 for i in items if i["outcome"] != "pending"), **_rate(report, items)}  # fmt: skip
    out["by_model"] = {m: _rate(models.get(m), [i for i in items if i["model"] == m]) for m in row.models}
    templates, overall = [], _named(report["templates"])
    for name in dict.fromkeys(i["template"] for i in items):
        mine = [i for i in items if i["template"] == name]
        by_model = {m: _rate(_named(models[m]["templates"]).get(name) if m in models else None,
                             [i for i in mine if i["model"] == m]) for m in row.models}  # fmt: skip
        templates.append({"template": name, "category": mine[0]["category"], "complexity": mine[0]["complexity"],
                          **_rate(overall.get(str(name)), mine), "by_model": by_model})  # fmt: skip
    out["templates"] = templates
    complexities = _named(report["by_complexity"])
    out["by_complexity"] = {str(c): _rate(complexities.get(str(c)), [i for i in items if i["complexity"] == c])
                            for c in sorted({i["complexity"] for i in items if i["complexity"] is not None})}  # fmt: skip
    resets = report["reset"]
    runs = sum(r["tasks"] for r in resets)
    total = round(sum(r["total_s"] for r in resets), 3)
    out["reset"] = {"method": resets[0]["method"] if resets else None, "runs": runs, "initialize_s_total": total,
                    "initialize_s_mean": round(total / runs, 3) if runs else None}  # fmt: skip
    # What the report adds (as in report.json): failure groups, infrastructure ends by reason, per-task costs.
    out |= {"failures": report["failures"], "infrastructure": report["infrastructure"], "per_task": report["per_task"]}
    out["task_list"] = items
    return out
