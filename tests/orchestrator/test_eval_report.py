"""The eval report from known records: rates, Wilson intervals by hand, infrastructure apart, renderings."""

from __future__ import annotations

import json
import re

import pytest

from orchestrator.services.eval_report import (
    EvalRecord,
    build_report,
    record_from_task,
    render_html,
    render_json,
    render_text,
    wilson_interval,
)


def rec(template: str, success: bool, **kw) -> EvalRecord:
    base = dict(
        template=template, complexity=kw.pop("complexity", "1"), model=kw.pop("model", "scripted"),
        score=1.0 if success else 0.0, success=success, status=kw.pop("status", "succeeded"),
        steps=4, wall_s=10.0, tokens=1000,
    )  # fmt: skip
    base.update(kw)
    return EvalRecord(**base)


def test_wilson_matches_a_hand_computation() -> None:
    # 8 of 10, z = 1.96: z² = 3.8416, 1 + z²/n = 1.38416;
    # centre = (0.8 + 3.8416/20) / 1.38416 = 0.99208 / 1.38416 = 0.71674;
    # half = 1.96 / 1.38416 * sqrt(0.8·0.2/10 + 3.8416/400) = 1.41602 * sqrt(0.025604) = 0.22658;
    # so [0.49016, 0.94332].
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=2e-4)
    assert high == pytest.approx(0.94332, abs=2e-4)
    # 0 of 10: centre = 0.19208/1.38416 = 0.13877 = half, so [0, 0.27754]; 10 of 10 mirrors it.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=2e-4))
    assert wilson_interval(10, 10) == (pytest.approx(0.72247, abs=2e-4), pytest.approx(1.0))
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_rates_per_template_and_complexity_with_infrastructure_apart() -> None:
    records = (
        [rec("wifi_on", True, complexity="1") for _ in range(8)]
        + [rec("wifi_on", False, complexity="1", status="failed", reason="max_steps") for _ in range(2)]
        + [rec("send_sms", True, complexity="3"), rec("send_sms", False, complexity="3")]
        # The agent said finish, the check said no: a failure, grouped apart from the agent's own.
        + [rec("send_sms", False, complexity="3", status="succeeded")]
        # Ended by the infrastructure: never scored, counted apart, with the retries.
        + [rec("send_sms", False, infrastructure=True, infrastructure_reason="device_error", retried=2)]
        + [rec("wifi_on", True, retried=1)]
    )
    report = build_report(records)
    # 10 wins of 14 scored (the infrastructure one left out).
    assert (report["successes"], report["tasks"], report["total_tasks"]) == (10, 14, 15)
    assert report["success_rate"] == round(10 / 14, 4)
    low, high = wilson_interval(10, 14)
    assert (report["wilson_low"], report["wilson_high"]) == (round(low, 4), round(high, 4))
    templates = {t["name"]: t for t in report["templates"]}
    assert (templates["wifi_on"]["successes"], templates["wifi_on"]["tasks"]) == (9, 11)
    assert (templates["send_sms"]["successes"], templates["send_sms"]["tasks"]) == (1, 3)
    assert templates["send_sms"]["wilson_low"] == round(wilson_interval(1, 3)[0], 4)
    complexities = {c["name"]: c["tasks"] for c in report["by_complexity"]}
    assert complexities == {"1": 11, "3": 3}
    assert report["infrastructure"] == {"tasks": 1, "retried": 3, "reasons": {"device_error": 1}}
    failures = {f["reason"]: f for f in report["failures"]}
    assert failures["failed: max_steps"]["count"] == 2
    assert failures["wrong_final_state"]["count"] == 2  # the two send_sms the agent "finished"
    assert failures["wrong_final_state"]["templates"] == ["send_sms"]
    assert sum(f["count"] for f in report["failures"]) == 4


def test_models_side_by_side_and_costs() -> None:
    records = [
        rec("a", True, model="m1", steps=2, wall_s=4.0, tokens=100),
        rec("a", True, model="m1", steps=4, wall_s=6.0, tokens=300),
        rec("a", True, model="m1", steps=9, wall_s=20.0, tokens=800),
        rec("a", False, model="m2", status="failed", reason="stuck"),
        rec("b", False, model="m2", infrastructure=True, infrastructure_reason="model_unavailable"),
    ]
    report = build_report(records)
    models = {m["name"]: m for m in report["models"]}
    assert list(models) == ["m1", "m2"]
    assert models["m1"]["success_rate"] == 1.0 and models["m2"]["success_rate"] == 0.0
    assert models["m1"]["per_task"]["steps"] == {"mean": 5.0, "p50": 4.0}
    assert models["m1"]["per_task"]["wall_s"] == {"mean": 10.0, "p50": 6.0}
    assert models["m1"]["per_task"]["tokens"] == {"mean": 400.0, "p50": 300.0}
    assert models["m2"]["tasks"] == 1  # its infrastructure task is not scored
    text = render_text(report)
    header = next(line for line in text.splitlines() if line.startswith("template"))
    assert "m1" in header and "m2" in header  # one column per model
    row_a = next(line for line in text.splitlines() if line.startswith("a "))
    assert "3/3 100.0%" in row_a and "0/1   0.0%" in row_a
    assert "infrastructure (not scored): 1 tasks (model_unavailable 1)" in text
    # Fixed width: the rows of a table line up under the header.
    table = text.split("\n\n")[0].splitlines()
    assert table[2].index("0/1") == header.index("m2")


def test_report_json_has_the_contract_keys() -> None:
    report = build_report([rec("a", True), rec("b", False, status="failed", reason="stuck")])
    data = json.loads(render_json(report))
    for key in ("success_rate", "wilson_low", "wilson_high", "templates", "by_complexity", "models",
                "infrastructure", "failures"):  # fmt: skip
        assert key in data
    assert {"name", "success_rate", "wilson_low", "wilson_high"} <= set(data["templates"][0])


def test_html_is_self_contained_and_escaped() -> None:
    report = build_report([rec("<script>x</script>", True, reset="pm_clear", reset_s=1.5)])
    page = render_html(report, title="builtin & co")
    assert "<script>x" not in page and "&lt;script&gt;x" in page
    assert "builtin &amp; co" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external asset
    assert "<link" not in page and "<script" not in page
    assert report["reset"] == [{"method": "pm_clear", "tasks": 1, "mean_s": 1.5, "total_s": 1.5}]


def test_bad_score_is_refused() -> None:
    with pytest.raises(ValueError, match="score"):
        rec("a", True, score=1.5)


def test_a_record_from_the_tasks_api_json() -> None:
    done = {"status": "succeeded", "reason": None, "attempts": 2,
            "result": {"status": "succeeded", "steps": 6, "elapsed_s": 41.5,
                       "usage": {"prompt_tokens": 9000, "completion_tokens": 300}}}  # fmt: skip
    record = record_from_task(done, template="wifi_on", complexity="1", model="m", score=1.0, success=True)
    assert (record.steps, record.wall_s, record.tokens, record.retried) == (6, 41.5, 9300, 1)
    assert record.success and not record.infrastructure
    lost = {"status": "failed", "reason": "worker_lost", "attempts": 3, "result": None}
    record = record_from_task(lost, template="wifi_on", complexity="1", model="m", score=1.0, success=True)
    assert record.infrastructure and record.infrastructure_reason == "worker_lost" and not record.success
    stuck = {"status": "failed", "reason": "stuck", "attempts": 1, "result": {"steps": 12}}
    record = record_from_task(stuck, template="wifi_on", complexity="1", model="m", score=0.0, success=False)
    assert not record.infrastructure and record.reason == "stuck" and record.retried == 0


def test_the_api_summary_is_build_reports_arithmetic() -> None:
    """``services.evals.summary`` (``GET /api/v1/evals/{id}``) takes its rates from ``build_report``:
    the same numbers, with pending tasks and per-group infrastructure counts beside (rows in memory,
    no database: only the arithmetic is under test)."""
    import datetime as dt
    import uuid

    from orchestrator.db import Eval, Task, TaskStatus
    from orchestrator.services.evals import summary

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    row = Eval(id=uuid.uuid4(), created_at=now, suite="builtin", models=["scripted", "m2"], repeat=1, seed=0,
               parallel=2)  # fmt: skip

    def task(template: str, model: str, status: TaskStatus, *, score: float | None = None, reason: str | None = None,
             complexity: int = 1) -> Task:  # fmt: skip
        evaluation = {} if score is None else {"score": score, "success": score == 1.0,
                                               "reset": {"method": "pm clear", "initialize_s": 0.5}}  # fmt: skip
        return Task(id=uuid.uuid4(), created_at=now, status=status, reason=reason, attempts=1, model=model,
                    evaluation={"template": template, "complexity": complexity, "category": "c", "repeat": 0},
                    result={"evaluation": evaluation, "steps": 3, "elapsed_s": 2.0})  # fmt: skip

    tasks = [
        task("a", "scripted", TaskStatus.SUCCEEDED, score=1.0), task("b", "scripted", TaskStatus.SUCCEEDED, score=1.0, complexity=2),
        task("a", "m2", TaskStatus.SUCCEEDED, score=0.0), task("b", "m2", TaskStatus.FAILED, reason="device_error", complexity=2),
        task("c", "m2", TaskStatus.QUEUED),
    ]  # fmt: skip
    out = summary(row, tasks)
    low, high = wilson_interval(2, 3)
    assert (out["runs"], out["successes"], out["infra"], out["pending"], out["done"]) == (3, 2, 1, 1, 4)
    assert out["success_rate"] == round(2 / 3, 4) and (out["wilson_low"], out["wilson_high"]) == (round(low, 4), round(high, 4))
    assert out["by_model"]["m2"]["runs"] == 1 and out["by_model"]["scripted"]["success_rate"] == 1.0
    assert (out["by_model"]["m2"]["infra"], out["by_model"]["m2"]["pending"], out["by_model"]["m2"]["success_rate"]) == (1, 1, 0.0)
    by_template = {t["template"]: t for t in out["templates"]}
    assert by_template["b"]["by_model"]["m2"]["success_rate"] is None and by_template["b"]["infra"] == 1
    assert by_template["c"]["runs"] == 0 and by_template["c"]["wilson_high"] == 1.0
    assert out["by_complexity"]["2"]["successes"] == 1 and out["by_complexity"]["1"]["runs"] == 2
    assert out["reset"] == {"method": "pm clear", "runs": 3, "initialize_s_total": 1.5, "initialize_s_mean": 0.5}
    assert out["infrastructure"]["reasons"] == {"device_error": 1}
    assert out["failures"] == [{"reason": "wrong_final_state", "count": 1, "templates": ["a"]}]
