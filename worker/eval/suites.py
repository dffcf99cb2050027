"""The suites by name, and the template an instruction was made from (for ``--model scripted``)."""

from __future__ import annotations

import random

from worker.eval import builtin_apps, builtin_shop, builtin_system
from worker.eval.template import Params, Template

__all__ = ["SUITES", "UnknownSuite", "UnknownTemplate", "find_template", "match_instruction", "plan", "suite"]

SUITES: dict[str, tuple[Template, ...]] = {
    "builtin": (*builtin_system.TEMPLATES, *builtin_apps.TEMPLATES, *builtin_shop.TEMPLATES),
    # A sound template and one with a deliberately broken check: shows a check failing a done task.
    "selftest": tuple(builtin_system.SELFTEST),
}


class UnknownSuite(LookupError):
    pass


class UnknownTemplate(LookupError):
    pass


def suite(name: str) -> tuple[Template, ...]:
    try:
        return SUITES[name]
    except KeyError:
        raise UnknownSuite(f"no suite named {name!r}; suites: {', '.join(sorted(SUITES))}") from None


def find_template(name: str, suite_name: str = "builtin") -> Template:
    for template in suite(suite_name):
        if template.name == name:
            return template
    raise UnknownTemplate(f"no template named {name!r} in the suite {suite_name!r}")


def match_instruction(instruction: str, suite_name: str = "builtin") -> tuple[Template, dict[str, str]] | None:
    """The template whose instruction ``instruction`` is, with its parameters (the first that fits)."""
    for template in suite(suite_name):
        params = template.match(instruction)
        if params is not None:
            return template, params
    return None


def plan(suite_name: str, *, seed: int, repeat: int = 1, templates: list[str] | None = None) -> list[dict]:
    """The runs of a suite: for each template (or the named ones) and repeat, its parameters from a
    seed of its own (``seed``, the template's index and the repeat), so one seed gives one suite."""
    chosen = suite(suite_name)
    if templates:
        unknown = sorted(set(templates) - {t.name for t in chosen})
        if unknown:
            raise UnknownTemplate(f"no template named {', '.join(unknown)} in the suite {suite_name!r}")
        chosen = tuple(t for t in chosen if t.name in templates)
    runs = []
    for repeat_index in range(repeat):
        for template in chosen:
            run_seed = random.Random(f"{seed}:{template.name}:{repeat_index}").randrange(2**31)
            params: Params = template.generate_params(random.Random(run_seed))
            runs.append({"suite": suite_name, "template": template.name, "params": dict(params), "seed": run_seed,
                         "repeat": repeat_index, "instruction": template.text(params),
                         "complexity": template.complexity, "category": str(template.category)})  # fmt: skip
    return runs
