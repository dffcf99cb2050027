"""From a model endpoint's settings to what the agent runs with: the client's config, the family, the prompt.

Every entry point that runs the agent on a named endpoint (the worker's run, ``phonefleet run
--endpoint``) builds it here, so an endpoint means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.settings import EndpointSettings, ModelSettings
from worker.agent.model_config import ModelClientConfig, ModelEndpoint

__all__ = ["EndpointRun", "PromptFileError", "endpoint_run"]


class PromptFileError(Exception):
    """An endpoint's ``prompt_file`` that cannot be read: the task fails saying so."""


@dataclass(frozen=True)
class EndpointRun:
    client: ModelClientConfig
    family: str
    lang: str
    prompt: str | None  # the prompt file's text, placeholders unfilled (None: the family's own)
    # A planner/grounder pair: ``client`` and ``prompt`` are the planner's, these the grounder's.
    grounder: ModelClientConfig | None = None
    grounder_family: str | None = None
    planner_vision: bool = True  # a pair's planner reads images (else it is told the screen in words)


def _endpoint(ep: EndpointSettings) -> ModelEndpoint:
    return ModelEndpoint(
        base_url=ep.base_url, model=ep.model, api_key=ep.api_key.get_secret_value() or None,
        max_in_flight=ep.max_in_flight,
    )  # fmt: skip


def endpoint_run(
    ep: EndpointSettings, model: ModelSettings, *, image_max_pixels: int = 1_000_000
) -> EndpointRun:
    """What a run on ``ep`` needs: its server then its failover endpoints (tried in order when it is
    down), its timeouts, family, language and prompt; for a pair, its planner's with its grounder's
    client and family. Raises ``PromptFileError``."""
    if ep.is_pair:
        assert ep.planner is not None and ep.grounder is not None  # is_pair
        planner = endpoint_run(model.by_name(ep.planner), model, image_max_pixels=image_max_pixels)
        grounder = endpoint_run(model.by_name(ep.grounder), model, image_max_pixels=image_max_pixels)
        return EndpointRun(planner.client, planner.family, ep.lang or planner.lang, planner.prompt,
                           grounder.client, grounder.family, model.by_name(ep.planner).vision)  # fmt: skip
    prompt = None
    if ep.prompt_file is not None:
        try:
            prompt = ep.prompt_file.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PromptFileError(
                f"model endpoint {ep.name!r}: its prompt_file cannot be read: {exc}"
            ) from exc
    client = ModelClientConfig(
        endpoints=[_endpoint(ep), *(_endpoint(model.by_name(name)) for name in ep.failover)],
        request_timeout_s=ep.request_timeout_s, first_token_timeout_s=ep.first_token_timeout_s,
        image_max_pixels=image_max_pixels,
    )  # fmt: skip
    return EndpointRun(client, ep.family, ep.lang or model.lang, prompt)
