"""What every route shares: pages, the error body, readiness; the example values OpenAPI shows."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EXAMPLE_TASK_ID", "EXAMPLE_TIME", "ErrorOut", "PageOut", "ReadinessOut"]

EXAMPLE_TASK_ID = "0b5f4c1e-8d1a-4f0e-9a53-2f7c1d9e6b10"
EXAMPLE_TIME = "2025-01-31T12:00:00.123456Z"

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """A page: pass ``next_cursor`` back as ``cursor`` for the next one; null on the last page."""

    items: list[T]
    next_cursor: str | None


class ErrorOut(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "task_not_found", "message": f"no task {EXAMPLE_TASK_ID}"}]}
    )

    error: str = Field(description="Stable, machine-readable code.")
    message: str = Field(description="What went wrong, for people.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: loc, msg, type."
    )


class ReadinessOut(BaseModel):
    """Each dependency: "ok" or why not."""

    status: str = Field(examples=["ready", "degraded", "unavailable"])
    checks: dict[str, str] = Field(examples=[{"database": "ok", "broker": "ok", "model": "ok"}])
