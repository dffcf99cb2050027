"""Evals end to end: ``POST /api/v1/evals`` → queue → worker (evaluation next to the phone) → the
reference model → the phone's state → the report. Every part is a real process (``conftest.py``).

One eval runs a representative subset of the built-in suite (a template of every category) with two
models side by side: ``scripted`` (the templates' own solutions: 100 %) and a model that only
answers ``finish`` (0 %: the state is judged, never the agent's word). The whole suite (42
templates) runs in ``bench/bench_eval.py``; every template's solution is checked against the
virtual phone in ``tests/worker/eval/test_builtin.py``. A second eval runs the ``selftest`` suite:
its template with a deliberately broken check fails though its solution did the task.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.cli import build_parser
from tests.conditions import wait_until
from tests.system.conftest import Fleet

PHONES = 3
# One of each category: one step, several steps, two apps, the pop-up, a confirmation, a person,
# infeasible (asks; the scripted person cancels).
SUBSET = ["wifi_off", "send_sms_contact", "sms_to_note", "add_to_cart", "buy_product", "bank_login", "missing_product"]
FINISH_ONLY = "autoglm-phone-9b"  # the reference model's own name: its script answers finish at once


def _wait_eval(fleet: Fleet, eval_id: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        report = fleet.http.get(f"/api/v1/evals/{eval_id}").json()
        return report if report["done"] == report["tasks"] else None

    return wait_until(done, timeout=timeout, interval=1.0, what=f"eval {eval_id} done:\n{fleet.tails()}")


def test_builtin_subset_scripted_scores_all_finish_only_none_and_a_broken_check_fails(
    start_fleet: Any, tmp_path: Path
) -> None:
    fleet: Fleet = start_fleet(PHONES)
    model = fleet.start_model(['finish(message="Done.")'])
    fleet.start_worker(model.base_url, concurrency=PHONES)

    # The selftest eval runs beside the main one (its report is read at the end).
    selftest_id = fleet.http.post("/api/v1/evals", json={"suite": "selftest", "models": ["scripted"]}).json()["id"]
    # Through the command line, as a person runs it: `phonefleet eval run` → report.json.
    out = tmp_path / "eval-out"
    # (Its parser and command, not main(): main sets the process's logging and environment.)
    args = build_parser().parse_args(["eval", "run", "builtin", "--model", "scripted", "--model", FINISH_ONLY, "--templates",
                 ",".join(SUBSET), "--seed", "7", "--max-steps", "20", "--parallel", str(PHONES), "--url", fleet.url,
                 "--api-key", fleet.key, "--out", str(out), "--poll", "1", "--wait-timeout", "600"])  # fmt: skip
    assert args.func(args) == 0, fleet.tails()
    written = json.loads((out / "report.json").read_text())
    assert {"success_rate", "wilson_low", "wilson_high", "templates"} <= written.keys()
    assert all({"template", "success_rate", "wilson_low", "wilson_high"} <= t.keys() for t in written["templates"])
    assert written["by_model"]["scripted"]["success_rate"] == 1.0 and written["success_rate"] == 0.5
    report = fleet.http.get(f"/api/v1/evals/{written['eval_id']}").json()
    assert report["tasks"] == 2 * len(SUBSET)
    scripted, finish_only = report["by_model"]["scripted"], report["by_model"][FINISH_ONLY]
    failures = [(t["template"], t["model"], t["status"], t["reason"]) for t in report["task_list"]
                if t["model"] == "scripted" and not t.get("success")]  # fmt: skip
    assert scripted["success_rate"] == 1.0, f"{failures}\n{fleet.tails()}"
    assert scripted["infra"] == 0 and finish_only["infra"] == 0
    assert finish_only["success_rate"] == 0.0, [t for t in report["task_list"] if t.get("success")]
    assert 0.0 < scripted["wilson_low"] < 1.0 == scripted["wilson_high"]
    assert {t["template"] for t in report["templates"]} == set(SUBSET)
    # The reset is part of the result: how, and what it cost.
    assert report["reset"]["runs"] == report["tasks"] and report["reset"]["initialize_s_mean"] > 0
    assert "pm clear" in report["reset"]["method"]
    # The scripted person answered: the payment was confirmed, the login done, the question cancelled.
    tasks = {(t["template"], t["model"]): t for t in report["task_list"]}
    assert tasks[("missing_product", "scripted")]["status"] == "cancelled"
    bank = fleet.task(tasks[("bank_login", "scripted")]["task_id"])
    assert bank["result"]["evaluation"]["person"][0]["kind"] == "takeover"

    selftest = _wait_eval(fleet, selftest_id, timeout=120)
    scores = {t["template"]: t["success_rate"] for t in selftest["templates"]}
    assert scores == {"wifi_on": 1.0, "wifi_on_broken_check": 0.0}
