"""Model families: the reply grammars the agent speaks, one module each (docs/models.md).

``family(name)`` gives the adapter an endpoint's ``family`` names; the loop asks it for each
request and gives it each reply (``base.Family``).
"""

from __future__ import annotations

from worker.agent.families.autoglm import AutoGlm
from worker.agent.families.base import PLACEHOLDERS, Family, fill_prompt
from worker.agent.families.qwen_mobile_use import Qwen3MobileUse, QwenMobileUse
from worker.agent.families.ui_tars import UiTars

FAMILIES: dict[str, Family] = {f.name: f for f in (AutoGlm(), UiTars(), QwenMobileUse(), Qwen3MobileUse())}
"""Family name → its adapter, in the order docs/models.md lists them."""


def family(name: str) -> Family:
    """The adapter for ``name``; ValueError naming the families when there is none."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; one of: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "PLACEHOLDERS", "Family", "family", "fill_prompt"]
