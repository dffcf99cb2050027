"""What a model client is told: the endpoints it may use and the numbers of its policy.

``worker.agent.model_client`` re-exports both; every entry point (the worker's run,
``phonefleet run``, the tests) builds a ``ModelClientConfig`` and hands it to ``ModelClient``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.agent.images import ImageFormat

__all__ = ["ModelClientConfig", "ModelEndpoint"]


@dataclass(frozen=True)
class ModelEndpoint:
    """One OpenAI-compatible server and model; ``base_url`` ends in ``/v1`` (``…/chat/completions`` is added)."""

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    max_in_flight: int = 8

    @property
    def name(self) -> str:
        """The identity a slot cap is keyed on: one cap per server and model."""
        return f"{self.base_url.rstrip('/')}|{self.model}"

    @property
    def chat_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"


@dataclass
class ModelClientConfig:
    """Everything the client needs, passed in by the entry point (seconds for every ``_s``)."""

    endpoints: list[ModelEndpoint]
    request_timeout_s: float = 120.0  # one attempt, request sent → last byte
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 60.0  # streaming only: request sent → first token
    max_retries: int = 3  # attempts = 1 + max_retries, spread over the endpoints
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0  # a longer Retry-After takes that endpoint out of this call
    breaker_cooldown_s: float = 30.0
    slot_wait_timeout_s: float = 300.0  # longest wait for an in-flight slot → ModelTimeout
    slot_lease_ttl_s: float = 30.0  # how long a dead process's slot stays taken (Redis only)
    redis_key_prefix: str = "phonefleet:"
    temperature: float = 0.0
    max_tokens: int = 3000
    top_p: float = 0.85
    frequency_penalty: float = 0.2
    stream: bool = True
    image_max_pixels: int = 1_000_000
    image_format: ImageFormat = "jpeg"
    jpeg_quality: int = 80
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("ModelClientConfig needs at least one endpoint")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', not {self.image_format!r}")
        for ep in self.endpoints:
            if ep.max_in_flight < 1:
                raise ValueError(f"max_in_flight must be >= 1 for {ep.base_url}")
