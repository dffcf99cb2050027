"""A small synchronous Python client for REST API v1 (``docs/api.md``), on httpx.

::

    from orchestrator.client import PhoneFleetClient

    with PhoneFleetClient("http://127.0.0.1:8000", "pf_…") as pf:
        task = pf.submit("Open Settings and turn on Wi-Fi", max_steps=20)
        task = pf.wait(task["id"], timeout_s=900)
        for step in pf.steps(task["id"]):
            print(step["index"], step["action_text"])
        pf.download_trajectory(task["id"], "task.zip")  # task.json, steps.jsonl, screenshots/

It is deliberately synchronous (integrators' scripts); async code can run it in a thread
(``asyncio.to_thread``) or call the REST API with its own HTTP client. It imports nothing of the
server (httpx, and the SDK's sending and exceptions). Answers are the API's JSON as plain dicts; the SDK (``orchestrator.sdk``,
docs/sdk.md) has every route, typed answers and an asyncio client.

Every non-2xx answer raises :class:`PhoneFleetAPIError` with the server's ``error`` code and
``message``, as the subclass of its code (``orchestrator.sdk.errors``: ``TaskNotFound`` …).
``submit`` always sends an ``Idempotency-Key`` (a fresh one unless you give yours), so the retries
it makes (connection errors and 500/502/504; 429/503 honouring ``Retry-After``) never create two
tasks. Reads retry the same way; ``cancel`` retries only 429/503 (answers that changed nothing).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from orchestrator.sdk._base import FINAL_STATUSES, PhoneFleetAPIError, TaskWaitTimeout, retry_wait
from orchestrator.sdk.client import Client

__all__ = ["FINAL_STATUSES", "PhoneFleetAPIError", "PhoneFleetClient", "TaskWaitTimeout", "retry_wait"]


class PhoneFleetClient:
    """REST API v1 over one httpx connection pool; use it as a context manager or call ``close()``.

    ``max_retries`` extra tries are made for retryable failures, each waiting ``Retry-After`` (or
    an exponential backoff from 0.5 s) capped at ``max_retry_wait_s``. ``transport`` is passed to
    httpx (tests, proxies, custom TLS).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        max_retry_wait_s: float = 30.0,
    ) -> None:
        # Sending and its retries are the SDK's (one loop for every client); answers stay dicts here.
        self._sdk = Client(base_url, api_key, timeout=timeout, transport=transport, max_retries=max_retries,
                           max_retry_wait_s=max_retry_wait_s)  # fmt: skip

    def __enter__(self) -> PhoneFleetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._sdk.close()

    # -- tasks -------------------------------------------------------------------------------------

    def submit(
        self,
        instruction: str,
        *,
        max_steps: int | None = None,
        timeout_s: int | None = None,
        device_profile: dict[str, Any] | None = None,
        model: str | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        retry_after_acting: bool | None = None,
        max_tries: int | None = None,
        subgoals: list[str] | None = None,
        on_step_failure: str | None = None,
    ) -> dict[str, Any]:
        """Submit a task and return it (``status`` ``queued``; or the original one on a replay).
        ``subgoals`` makes it a task chain (``on_step_failure``: ``stop`` or ``ask``)."""
        body: dict[str, Any] = {"instruction": instruction}
        optional = {"max_steps": max_steps, "timeout_s": timeout_s, "device_profile": device_profile,
                    "model": model, "webhook_url": webhook_url, "metadata": metadata,
                    "retry_after_acting": retry_after_acting, "max_tries": max_tries,
                    "subgoals": subgoals, "on_step_failure": on_step_failure}  # fmt: skip
        body |= {name: value for name, value in optional.items() if value is not None}
        headers = {"Idempotency-Key": idempotency_key or f"pfclient-{uuid.uuid4()}"}
        return self._request("POST", "/api/v1/tasks", json=body, headers=headers, safe=True).json()

    def get(self, task_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/tasks/{task_id}").json()

    def create_eval(self, suite: str, models: list[str], **fields: Any) -> dict[str, Any]:
        """Run a suite (``POST /api/v1/evals``; fields: repeat, seed, templates, parallel, max_steps, timeout_s)."""
        body = {"suite": suite, "models": models, **{k: v for k, v in fields.items() if v is not None}}
        return self._request("POST", "/api/v1/evals", json=body, safe=False).json()

    def get_eval(self, eval_id: str) -> dict[str, Any]:
        """An eval's report so far (``GET /api/v1/evals/{id}``)."""
        return self._request("GET", f"/api/v1/evals/{eval_id}").json()

    def list(self, status: str | None = None, limit: int = 50) -> Iterator[dict[str, Any]]:
        """Every task of your tenant (newest first), fetching ``limit`` (1–100) per page as needed."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        return self._pages("/api/v1/tasks", params)

    def steps(self, task_id: str) -> Iterator[dict[str, Any]]:
        """The task's steps, oldest first, across all pages."""
        return self._pages(f"/api/v1/tasks/{task_id}/steps", {"limit": 100})

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel: a queued task ends at once; a running one gets ``cancel_requested``. 409 if ended."""
        return self._request("POST", f"/api/v1/tasks/{task_id}/cancel", safe=False).json()

    def confirm(self, task_id: str, approved: bool) -> dict[str, Any]:
        """Answer the agent's request to confirm an action. 409 if it is not waiting for one."""
        return self._request(
            "POST", f"/api/v1/tasks/{task_id}/confirm", json={"approved": approved}, safe=False
        ).json()

    def reply(self, task_id: str, answer: str) -> dict[str, Any]:
        """Answer the agent's question. 409 if it is not waiting for an answer."""
        return self._request(
            "POST", f"/api/v1/tasks/{task_id}/reply", json={"answer": answer}, safe=False
        ).json()

    def wait(self, task_id: str, timeout_s: float, poll_s: float = 1.0) -> dict[str, Any]:
        """Poll until the task reaches a final status and return it; :class:`TaskWaitTimeout` if not."""
        deadline = time.monotonic() + timeout_s
        while True:
            task = self.get(task_id)
            if task.get("status") in FINAL_STATUSES:
                return task
            left = deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(task, timeout_s)
            time.sleep(min(poll_s, left))

    def screenshot(self, task_id: str, index: int) -> bytes:
        """The image (JPEG or PNG bytes) the model saw at step ``index``."""
        return self._request("GET", f"/api/v1/tasks/{task_id}/steps/{index}/screenshot").content

    def download_trajectory(self, task_id: str, path: str | os.PathLike[str]) -> Path:
        """Save the task's trajectory zip (``task.json``, ``steps.jsonl``, ``screenshots/``) to ``path``.

        Streamed to ``<path>.part`` and renamed when complete, so ``path`` never holds half a zip.
        A running task's trajectory is a snapshot. Returns ``path``.
        """
        return self._sdk.download_trajectory(task_id, path)

    # -- schedules ---------------------------------------------------------------------------------

    def create_schedule(
        self,
        task: dict[str, Any],
        *,
        cron: str | None = None,
        timezone: str | None = None,
        interval_s: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A schedule making a run of ``task`` (a ``POST /api/v1/tasks`` body) by ``cron`` in
        ``timezone``, or every ``interval_s``; ``fields``: ``catch_up``, ``overlap``, ``paused``.
        Not retried on a lost connection (it has no idempotency key: a replay could make two)."""
        timing = {"cron": cron, "timezone": timezone, "interval_s": interval_s}
        body = {"task": task, **{k: v for k, v in (timing | fields).items() if v is not None}}
        return self._request("POST", "/api/v1/schedules", json=body, safe=False).json()

    def schedules(self, limit: int = 50) -> Iterator[dict[str, Any]]:
        """Every schedule of your tenant (newest first), each with its last run and next due time."""
        return self._pages("/api/v1/schedules", {"limit": limit})

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/schedules/{schedule_id}").json()

    def update_schedule(self, schedule_id: str, **fields: Any) -> dict[str, Any]:
        """Change a schedule (``PATCH``): any field, e.g. ``interval_s=60`` or ``task={…}``."""
        return self._request("PATCH", f"/api/v1/schedules/{schedule_id}", json=fields).json()

    def pause_schedule(self, schedule_id: str) -> dict[str, Any]:
        """No runs until resumed."""
        return self.update_schedule(schedule_id, paused=True)

    def resume_schedule(self, schedule_id: str) -> dict[str, Any]:
        """Runs again; the next due time is the first after now."""
        return self.update_schedule(schedule_id, paused=False)

    def delete_schedule(self, schedule_id: str) -> None:
        """No more runs (those it made stay, as tasks). 404 when it is already gone."""
        self._request("DELETE", f"/api/v1/schedules/{schedule_id}", safe=False)

    def schedule_runs(self, schedule_id: str, limit: int = 50) -> Iterator[dict[str, Any]]:
        """The schedule's runs (tasks), newest first."""
        return self._pages(f"/api/v1/schedules/{schedule_id}/runs", {"limit": limit})

    # -- webhook subscriptions (admin) ----------------------------------------------------------

    def create_webhook(self, url: str, events: list[str]) -> dict[str, Any]:
        """Subscribe ``url`` to your tenant's events of ``events``; the answer holds its ``secret``
        (shown only here and on a rotation). Not retried on a lost connection."""
        return self._request(
            "POST", "/api/v1/webhooks", json={"url": url, "events": events}, safe=False
        ).json()

    def webhooks(self) -> list[dict[str, Any]]:
        """Your tenant's subscriptions, newest first, without secrets."""
        return self._request("GET", "/api/v1/webhooks").json()

    def get_webhook(self, subscription_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/webhooks/{subscription_id}").json()

    def rotate_webhook_secret(self, subscription_id: str) -> dict[str, Any]:
        """A new signing secret (in the answer); the old one signs nothing more."""
        return self._request("POST", f"/api/v1/webhooks/{subscription_id}/rotate-secret", safe=False).json()

    def delete_webhook(self, subscription_id: str) -> None:
        self._request("DELETE", f"/api/v1/webhooks/{subscription_id}", safe=False)

    # -- plumbing ----------------------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self._request("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            body = page.json()
            yield from body["items"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def _request(
        self, method: str, path: str, *, safe: bool = True, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send; retry 429/503 always and transport errors when ``safe`` (replaying cannot double-act).

        With ``stream`` a successful response's body is not read yet: the caller must close it.
        """
        return self._sdk._request(method, path, safe=safe, stream=stream, **kwargs)
