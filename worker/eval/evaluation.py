"""An evaluated run, beside the agent on the phone the worker leased: the template's start state before
the agent, its score from the phone after, its tear-down; what the reset cost.

A task carries its evaluation (``tasks.evaluation``: suite, template, params, seed); the worker's run
(``worker/run/drive.py``) builds an ``Evaluation`` for the leased phone, ``start``s it before the
first try and ``finish``es it after the last, and stores ``finish``'s record in the task's
``result.evaluation``. The reset is in two parts, both recorded: the pool's factory reset after the
previous lease (``pool_reset``: the provider's kind) and the template's ``initialize`` (``pm clear``
of its apps, then its seeded state), timed here.
"""

from __future__ import annotations

import time
from typing import Any

from worker.eval.phone import EvalPhone, PhoneDevice
from worker.eval.suites import find_template
from worker.eval.template import Params, Template

__all__ = ["RESET_METHOD", "Evaluation"]

RESET_METHOD = "pm clear + seeded state (after the pool's factory reset)"


class Evaluation:
    """One task's evaluation on one phone (one attempt: a retried attempt starts a new one)."""

    def __init__(self, spec: dict[str, Any], device: PhoneDevice) -> None:
        self.spec = spec
        self.template: Template = find_template(spec["template"], spec.get("suite", "builtin"))
        self.params: Params = dict(spec["params"])
        self.phone = EvalPhone(device)
        self._before: str | None = None
        self.timings: dict[str, float] = {}

    async def start(self) -> None:
        t0 = time.monotonic()
        await self.template.initialize(self.phone, self.params)
        if self.template.infeasible:
            self._before = await self.phone.digest()
        self.timings["initialize_s"] = round(time.monotonic() - t0, 3)

    async def finish(self, *, asked: bool, person: list[dict[str, str]]) -> dict[str, Any]:
        """Score the phone as it is now, tear down, and return the record for ``result.evaluation``."""
        t0 = time.monotonic()
        score = await self.template.is_successful(self.phone, self.params)
        if self.template.infeasible:
            unchanged = await self.phone.digest() == self._before
            score = 1.0 if asked and unchanged else 0.0
        self.timings["check_s"] = round(time.monotonic() - t0, 3)
        t1 = time.monotonic()
        await self.template.tear_down(self.phone, self.params)
        self.timings["tear_down_s"] = round(time.monotonic() - t1, 3)
        return {
            "suite": self.spec.get("suite", "builtin"), "template": self.template.name, "params": dict(self.params),
            "seed": self.spec.get("seed"), "category": str(self.template.category),
            "complexity": self.template.complexity, "score": score, "success": score >= 1.0,
            "person": person, "reset": {"method": RESET_METHOD, "initialize_s": self.timings["initialize_s"]},
            "timings": dict(self.timings),
        }  # fmt: skip
