"""The root of the SDK's exception tree and the retry rule, shared by every client here.

Imports nothing of the server: the MCP server uses these clients and may not import the API, the
database or the pool (pyproject's layer contracts).
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["FINAL_STATUSES", "PhoneFleetAPIError", "TaskWaitTimeout", "retry_after", "retry_wait"]

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
"""A task in one of these never changes again."""

# Answers that changed nothing, whatever the request: sent again always (after Retry-After).
_RETRY_ALWAYS = frozenset({429, 503})
# A server failure or a proxy's: the request may have been acted on, so only safe ones are resent.
_RETRY_WHEN_SAFE = frozenset({500, 502, 504})


class PhoneFleetAPIError(Exception):
    """A non-2xx answer: HTTP ``status``, the server's stable ``code`` and its ``message``.

    Raised as the subclass of its code (``orchestrator.sdk.errors``: ``TaskNotFound``,
    ``PathNotAllowed`` …, in the server's tree), so ``except NotFound`` catches every not-found.
    """

    code: str = "phonefleet_error"
    retryable: bool = False

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after_s = retry_after_s

    @classmethod
    def from_response(cls, response: httpx.Response) -> PhoneFleetAPIError:
        """The error of a non-2xx answer, as the class of its code (the base for an unknown one)."""
        from orchestrator.sdk.errors import error_from_response

        return error_from_response(response)


class TaskWaitTimeout(TimeoutError):
    """A wait for a task ran out of time; ``task`` is the last answer (``task["status"]``)."""

    def __init__(self, task: Any, timeout_s: float) -> None:
        fields = task if isinstance(task, dict) else {"id": task.id, "status": task.status}
        super().__init__(f"task {fields.get('id')} is still {fields.get('status')} after {timeout_s:g} s")
        self.task = task
        self.status = fields.get("status")


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the server sends seconds, so fall back to our own backoff


def _permanent(response: httpx.Response) -> bool:
    """A 5xx whose code says sending again gets the same answer (a command the phone ran and failed,
    ``command_failed``); a proxy's answer (no code), a retryable code or ``internal_error`` is not."""
    from orchestrator.sdk.errors import ERRORS

    try:
        code = response.json().get("error")
    except (ValueError, AttributeError):
        return False
    cls = ERRORS.get(code) if isinstance(code, str) else None
    return cls is not None and not cls.retryable and code != "internal_error"


def retry_wait(response: httpx.Response | None, attempt: int, *, safe: bool, max_retries: int) -> float | None:
    """Seconds to wait before sending again after ``attempt`` (0-based) failed, or None: do not.

    ``response`` None is a connection error, retried only when ``safe`` (sending again cannot act
    twice: a read, or a submission carrying its Idempotency-Key); so are 500, 502 and 504, unless
    their code says the same answer would come again. 429 and 503 are retried always, after
    ``Retry-After`` (else 0.5 s, 1 s, 2 s …).
    """
    if attempt >= max_retries:
        return None
    if response is None:
        return 0.5 * 2**attempt if safe else None
    if response.status_code in _RETRY_WHEN_SAFE:
        return 0.5 * 2**attempt if safe and not _permanent(response) else None
    if response.status_code not in _RETRY_ALWAYS:
        return None
    wait = retry_after(response)
    return 0.5 * 2**attempt if wait is None else wait
