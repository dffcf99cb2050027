"""The reference model: an OpenAI-compatible server that plays AutoGLM-Phone with OCR and plain rules.

A baseline for development and tests, not intelligence: see ``docs/reference-model.md`` for what it
can and cannot do. ``create_app(ReferenceModelConfig(...))`` gives the ASGI app; ``phonefleet
reference-model`` serves it.
"""

from worker.reference_model.instructions import Goal, Intent, parse_instruction
from worker.reference_model.policy import decide, plan
from worker.reference_model.script import ScriptError, load_script
from worker.reference_model.server import ReferenceModelConfig, create_app

__all__ = [
    "Goal",
    "Intent",
    "ReferenceModelConfig",
    "ScriptError",
    "create_app",
    "decide",
    "load_script",
    "parse_instruction",
    "plan",
]
