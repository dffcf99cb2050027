"""Model endpoints by name: what a task's ``model`` names (``Settings.model.endpoints``).

The API resolves the name at submission (an unknown one answers 422 listing the names); the worker
resolves it again from its own settings when it runs the task, so both sides share this function.
A name that is no endpoint's but is exactly one endpoint's served model name (what clients sent
before endpoints had names, e.g. ``"autoglm-phone-9b"``) stands for that endpoint.

``scripted`` is one more name, unless an endpoint has it: the default endpoint's server asked for
the served model ``scripted``, which the reference model answers with each eval template's scripted
solution (docs/evals.md) and a real model server refuses (the task then fails ``model_error``).
"""

from __future__ import annotations

from orchestrator.errors import UnknownModelEndpoint
from orchestrator.settings import EndpointSettings, ModelSettings

__all__ = ["SCRIPTED", "endpoint_for", "endpoint_names"]

SCRIPTED = "scripted"


def endpoint_names(model: ModelSettings) -> list[str]:
    """The names a task may give as ``model``, the default first."""
    return [ep.name for ep in model.all_endpoints()]


def endpoint_for(name: str | None, model: ModelSettings) -> EndpointSettings:
    """The endpoint a task's ``model`` chooses: the first when None, else by name, else by a served
    model name only one endpoint serves. Raises ``UnknownModelEndpoint``."""
    endpoints = model.all_endpoints()
    if name is None:
        return endpoints[0]
    for ep in endpoints:
        if ep.name == name:
            return ep
    serving = [ep for ep in endpoints if ep.model and ep.model == name]
    if len(serving) == 1:
        return serving[0]
    if name == SCRIPTED:
        first = endpoints[0] if not endpoints[0].is_pair else model.by_name(endpoints[0].planner or "")
        return first.model_copy(update={"name": SCRIPTED, "model": SCRIPTED, "family": "autoglm",
                                               "prompt_file": None, "failover": [],
                                               "planner": None, "grounder": None})  # fmt: skip
    raise UnknownModelEndpoint(name, [ep.name for ep in endpoints])
