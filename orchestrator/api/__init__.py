"""REST API v1 (FastAPI): ``create_app(settings)``. Routes are thin; the rules live in ``orchestrator.services``."""

from orchestrator.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
