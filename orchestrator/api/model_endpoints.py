"""``GET /api/v1/models``: the model endpoints a task's ``model`` may name, and their families.

Every caller sees the names and families; where each endpoint is (its URL, served model name,
limits) only admins see — never a key. (The operator role of issue 17 joins admins here when merged.)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from orchestrator.api.deps import CurrentPrincipal, SettingsDep
from orchestrator.api.schemas import ErrorOut

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/models", tags=["models"],
    responses={401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"}},
)  # fmt: skip


class ModelEndpointOut(BaseModel):
    name: str = Field(description="What a task gives as `model`.")
    family: str = Field(description="The reply grammar it speaks: autoglm, ui-tars, qwen-mobile-use or qwen3-mobile-use.")
    default: bool = Field(description="Whether a task without `model` runs on it (the first endpoint).")
    base_url: str | None = Field(default=None, description="Admins only: the server.")
    served_model: str | None = Field(default=None, description="Admins only: the model name it is sent.")
    custom_prompt: bool | None = Field(default=None, description="Admins only: it has a prompt_file.")
    max_in_flight: int | None = Field(default=None, description="Admins only: requests at once, at most.")
    failover: list[str] | None = Field(default=None, description="Admins only: endpoints tried when it is down.")
    planner: str | None = Field(default=None, description="A pair: the endpoint that plans each step.")
    grounder: str | None = Field(default=None, description="A pair: the endpoint that finds each target.")


class ModelListOut(BaseModel):
    items: list[ModelEndpointOut]


@router.get("", summary="List the model endpoints")
async def list_models(principal: CurrentPrincipal, settings: SettingsDep) -> ModelListOut:
    """The endpoints a task may name as `model`, the default first; where they are only to admins."""
    items = []
    for i, ep in enumerate(settings.model.all_endpoints()):
        extra: dict[str, Any] = {}
        if principal.is_admin:
            extra = {
                "base_url": ep.base_url, "served_model": ep.model, "custom_prompt": ep.prompt_file is not None,
                "max_in_flight": ep.max_in_flight, "failover": list(ep.failover),
            }  # fmt: skip
        # A pair answers in its grounder's family (its planner speaks the loop's own grammar).
        family = settings.model.by_name(ep.grounder).family if ep.grounder is not None else ep.family
        items.append(ModelEndpointOut(name=ep.name, family=family, default=i == 0, planner=ep.planner,
                                      grounder=ep.grounder, **extra))  # fmt: skip
    return ModelListOut(items=items)
