"""An async Python client for REST API v1 (``docs/api.md``), on httpx: tasks, sessions, the device API
of a session's phone, devices, schedules and webhook subscriptions.

::

    from orchestrator.async_client import AsyncPhoneFleetClient

    async with AsyncPhoneFleetClient("http://127.0.0.1:8000", "pf_…") as pf:
        session = await pf.start_session(ttl_s=600)
        tree = await pf.ui_tree(session["id"])
        settings = next(e for e in tree["elements"] if e.get("text") == "Settings")
        await pf.tap(session["id"], element_id=settings["id"])
        png = await pf.screenshot(session["id"])
        await pf.close_session(session["id"])

Answers are the API's JSON as plain dicts; a non-2xx answer raises ``PhoneFleetAPIError`` (as the
subclass of its code, ``orchestrator.sdk.errors``). Sending and retrying are the SDK's
(``orchestrator.sdk.AsyncClient``, which also has every other route and typed answers): 429 and
503 (honouring ``Retry-After``) on every call; connection errors and 500/502/504 only where sending
again cannot act twice (reads, and ``submit``, which always sends an ``Idempotency-Key``). It
imports nothing of the server.

``http``: an ``httpx.AsyncClient`` of yours to send through (its base URL and transport; it is not
closed here) — the MCP server passes the API's own app this way, with each caller's key.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx

from orchestrator.client import FINAL_STATUSES, TaskWaitTimeout
from orchestrator.sdk.client import AsyncClient

__all__ = ["AsyncPhoneFleetClient"]


class AsyncPhoneFleetClient:
    """REST API v1 for one API key; ``async with`` it, or ``await close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 30,
        max_retries: int = 3,
        max_retry_wait_s: float = 30.0,
    ) -> None:
        if http is None and base_url is None:
            raise ValueError("give base_url, or an httpx.AsyncClient as http")
        # Sending and its retries are the SDK's (one loop for every client); answers stay dicts here.
        self._sdk = AsyncClient(base_url, api_key, http=http, timeout=timeout, max_retries=max_retries,
                                max_retry_wait_s=max_retry_wait_s)  # fmt: skip

    async def __aenter__(self) -> AsyncPhoneFleetClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._sdk.close()

    # -- tasks -------------------------------------------------------------------------------------

    async def submit(self, instruction: str, *, idempotency_key: str | None = None, **fields: Any) -> dict[str, Any]:
        """Submit a task (``fields``: ``max_steps``, ``timeout_s``, ``device_profile``, ``model``,
        ``webhook_url``, ``metadata``, ``retry_after_acting``, ``max_tries``, ``subgoals``,
        ``on_step_failure``; None ones are left out)."""
        body = {"instruction": instruction, **{k: v for k, v in fields.items() if v is not None}}
        headers = {"Idempotency-Key": idempotency_key or f"pfclient-{uuid.uuid4()}"}
        return await self._json("POST", "/api/v1/tasks", json=body, headers=headers, safe=True)

    async def task(self, task_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/tasks/{task_id}")

    def tasks(self, status: str | None = None, limit: int = 50) -> AsyncIterator[dict[str, Any]]:
        """Every task of your tenant, newest first, ``limit`` (1–100) per page as needed."""
        return self._pages("/api/v1/tasks", {"limit": limit, **({"status": status} if status else {})})

    def steps(self, task_id: str) -> AsyncIterator[dict[str, Any]]:
        """The task's steps, oldest first, across all pages."""
        return self._pages(f"/api/v1/tasks/{task_id}/steps", {"limit": 100})

    async def cancel(self, task_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/tasks/{task_id}/cancel", safe=False)

    async def confirm(self, task_id: str, approved: bool) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/tasks/{task_id}/confirm", json={"approved": approved}, safe=False)

    async def reply(self, task_id: str, answer: str) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/tasks/{task_id}/reply", json={"answer": answer}, safe=False)

    async def wait(
        self, task_id: str, timeout_s: float, poll_s: float = 1.0, *, until: frozenset[str] = FINAL_STATUSES
    ) -> dict[str, Any]:
        """Poll until the task's status is in ``until`` (default: final) and return it; raises
        ``TaskWaitTimeout`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            task = await self.task(task_id)
            if task.get("status") in until:
                return task
            left = deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(task, timeout_s)
            await asyncio.sleep(min(poll_s, left))

    # -- sessions ----------------------------------------------------------------------------------

    async def start_session(
        self, *, ttl_s: int = 600, device_profile: dict[str, Any] | str | None = None, wait_s: float = 10,
        personal_phone_id: str | None = None,
    ) -> dict[str, Any]:
        """Lease a phone (your personal phone, woken if asleep, with ``personal_phone_id``); 503
        ``no_device_available`` (retried as told by ``Retry-After``) when none came free."""
        body: dict[str, Any] = {"ttl_s": ttl_s, "device_profile": device_profile, "wait_s": wait_s}
        if personal_phone_id is not None:
            body["personal_phone_id"] = personal_phone_id
        # Not resent after a connection error: the first may have leased a phone.
        return await self._json("POST", "/api/v1/sessions", json=body, safe=False)

    async def session(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/sessions/{session_id}")

    def sessions(self, state: str | None = None, limit: int = 20) -> AsyncIterator[dict[str, Any]]:
        return self._pages("/api/v1/sessions", {"limit": limit, **({"state": state} if state else {})})

    async def keepalive(self, session_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/sessions/{session_id}/keepalive")

    async def close_session(self, session_id: str) -> dict[str, Any]:
        """Give the phone back; closing an ended session answers it as it is (so this is safe to resend)."""
        return await self._json("DELETE", f"/api/v1/sessions/{session_id}")

    # -- the device API of a session's phone -------------------------------------------------------

    async def screenshot(
        self, session_id: str, *, format: Literal["png", "jpeg"] = "png", scale: float = 1.0, quality: int = 80,
        max_side: int | None = None,
    ) -> bytes:  # fmt: skip
        """The screen now; the phone's size is in the answer's ``X-Screen-Width``/``-Height`` (``screenshot_response``)."""
        params: dict[str, Any] = {"format": format, "scale": scale, "quality": quality}
        if max_side is not None:
            params["max_side"] = max_side
        return (await self.screenshot_response(session_id, **params)).content

    async def screenshot_response(self, session_id: str, **params: Any) -> httpx.Response:
        return await self._request("GET", f"/api/v1/sessions/{session_id}/screenshot", params=params)

    async def ui_tree(self, session_id: str) -> dict[str, Any]:
        """``{"screen", "package", "elements": [{"id", "kind", "text", "bounds", …}]}``."""
        return await self._json("GET", f"/api/v1/sessions/{session_id}/ui")

    async def ui_xml(self, session_id: str) -> str:
        return (await self._request("GET", f"/api/v1/sessions/{session_id}/ui", params={"format": "xml"})).text

    async def input(self, session_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """One input (``{"type": "tap", …}``, docs/api.md); not resent after a connection error."""
        return await self._json("POST", f"/api/v1/sessions/{session_id}/input", json=body, safe=False)

    # The input helpers are the SDK's (their answers are the API's JSON, dicts, here as there).
    async def tap(
        self, session_id: str, x: int | None = None, y: int | None = None, *, element_id: str | None = None,
        kind: Literal["tap", "double_tap", "long_press"] = "tap",
    ) -> dict[str, Any]:  # fmt: skip
        """Tap a point (screen pixels) or an element of ``ui_tree`` by id."""
        return await self._sdk.tap(session_id, x, y, element_id=element_id, kind=kind)

    async def swipe(
        self, session_id: str, *, direction: Literal["up", "down", "left", "right"] | None = None,
        points: tuple[int, int, int, int] | None = None, duration_ms: int = 300,
    ) -> dict[str, Any]:  # fmt: skip
        """Swipe in a direction, or along ``points`` (x1, y1, x2, y2)."""
        return await self._sdk.swipe(session_id, direction=direction, points=points, duration_ms=duration_ms)

    async def type_text(self, session_id: str, text: str, *, clear: bool = False) -> dict[str, Any]:
        return await self._sdk.type_text(session_id, text, clear=clear)

    async def press_key(self, session_id: str, key: str) -> dict[str, Any]:
        return await self._sdk.press_key(session_id, key)

    async def launch(self, session_id: str, app: str) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/sessions/{session_id}/launch", json={"app": app}, safe=False)

    async def push_file(self, session_id: str, path: str, data: bytes) -> dict[str, Any]:
        """Write ``data`` to ``path`` on the phone (inside its allowed folders, ``/sdcard/`` by default);
        answers ``{"type": "push_file", "path", "bytes"}``. Resent safely: a push replaces the file."""
        return await self._json("PUT", f"/api/v1/sessions/{session_id}/files", params={"path": path}, content=data)

    async def pull_file(self, session_id: str, path: str) -> bytes:
        """The bytes of the file at ``path`` on the phone (``file_not_found`` when there is none)."""
        return (await self._request("GET", f"/api/v1/sessions/{session_id}/files", params={"path": path})).content

    # -- devices -----------------------------------------------------------------------------------

    def devices(self, state: str | None = None, limit: int = 50) -> AsyncIterator[dict[str, Any]]:
        return self._pages("/api/v1/devices", {"limit": limit, **({"state": state} if state else {})})

    async def device(self, device_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/devices/{device_id}")

    # -- personal phones ---------------------------------------------------------------------------

    def personal_phones(self, limit: int = 50) -> AsyncIterator[dict[str, Any]]:
        return self._pages("/api/v1/personal-phones", {"limit": limit})

    # -- schedules ---------------------------------------------------------------------------------

    async def create_schedule(self, task: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A schedule of ``task`` (a ``POST /api/v1/tasks`` body); ``fields``: ``cron`` and
        ``timezone``, or ``interval_s``; ``catch_up``, ``overlap``, ``paused`` (None ones left out).
        Not resent after a connection error (no idempotency key: a replay could make two)."""
        body = {"task": task, **{k: v for k, v in fields.items() if v is not None}}
        return await self._json("POST", "/api/v1/schedules", json=body, safe=False)

    def schedules(self, limit: int = 50) -> AsyncIterator[dict[str, Any]]:
        """Every schedule of your tenant, newest first, each with its last run and next due time."""
        return self._pages("/api/v1/schedules", {"limit": limit})

    async def schedule(self, schedule_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/schedules/{schedule_id}")

    async def update_schedule(self, schedule_id: str, **fields: Any) -> dict[str, Any]:
        """Change a schedule (``PATCH``): any field, e.g. ``interval_s=60``."""
        return await self._json("PATCH", f"/api/v1/schedules/{schedule_id}", json=fields)

    async def pause_schedule(self, schedule_id: str) -> dict[str, Any]:
        return await self.update_schedule(schedule_id, paused=True)

    async def resume_schedule(self, schedule_id: str) -> dict[str, Any]:
        return await self.update_schedule(schedule_id, paused=False)

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._request("DELETE", f"/api/v1/schedules/{schedule_id}", safe=False)

    def schedule_runs(self, schedule_id: str, limit: int = 50) -> AsyncIterator[dict[str, Any]]:
        """The schedule's runs (tasks), newest first."""
        return self._pages(f"/api/v1/schedules/{schedule_id}/runs", {"limit": limit})

    # -- webhook subscriptions (admin) ----------------------------------------------------------

    async def create_webhook(self, url: str, events: list[str]) -> dict[str, Any]:
        """Subscribe ``url`` to your tenant's ``events``; the answer holds its ``secret`` (shown only
        here and on a rotation)."""
        return await self._json("POST", "/api/v1/webhooks", json={"url": url, "events": events}, safe=False)

    async def webhooks(self) -> list[dict[str, Any]]:
        return await self._json("GET", "/api/v1/webhooks")

    async def webhook(self, subscription_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/v1/webhooks/{subscription_id}")

    async def rotate_webhook_secret(self, subscription_id: str) -> dict[str, Any]:
        return await self._json("POST", f"/api/v1/webhooks/{subscription_id}/rotate-secret", safe=False)

    async def delete_webhook(self, subscription_id: str) -> None:
        await self._request("DELETE", f"/api/v1/webhooks/{subscription_id}", safe=False)

    # -- plumbing ----------------------------------------------------------------------------------

    async def _pages(self, path: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            body = await self._json("GET", path, params={**params, **({"cursor": cursor} if cursor else {})})
            for item in body["items"]:
                yield item
            cursor = body.get("next_cursor")
            if not cursor:
                return

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._request(method, path, **kwargs)).json()

    async def _request(
        self, method: str, path: str, *, safe: bool = True, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send; retried as the sync client does (``retry_wait``)."""
        return await self._sdk._request(method, path, safe=safe, headers=headers, **kwargs)
