"""The SDK's two clients: :class:`Client` (blocking) and :class:`AsyncClient` (asyncio), on httpx.

Both have every route of ``orchestrator/sdk/_core.py``, with the same names and arguments; the
async client's return awaitables (its listings and streams are async iterators). What differs is
written here once per client: sending with retries, walking pages, downloading to a file, the
events socket and the logcat stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from orchestrator.sdk import models as m
from orchestrator.sdk._base import FINAL_STATUSES, TaskWaitTimeout, retry_wait
from orchestrator.sdk._core import (
    MAX_RESUMES,
    RESUMABLE_CLOSES,
    Call,
    Routes,
    SseParser,
    events_url,
    logcat_params,
    next_page,
)
from orchestrator.sdk.errors import error_from_close, error_from_response

__all__ = ["AsyncClient", "Client", "Event"]


class Event(BaseModel):
    """One event of your tenant (docs/api.md "Events"): ``task.status``, ``task.step``,
    ``task.confirmation_requested`` …; types this SDK does not know come through as they are."""

    model_config = ConfigDict(extra="allow")

    id: int
    type: str
    task_id: uuid.UUID | None = None
    created_at: dt.datetime
    payload: dict[str, Any] = {}


class _Config:
    """What both clients are made with."""

    def __init__(
        self, base_url: str, api_key: str | None, *, timeout: float, max_retries: int, max_retry_wait_s: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s
        self.timeout = timeout
        self.headers = {"User-Agent": "phonefleet-sdk"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def socket_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def _event_or_none(raw: str | bytes) -> Event | None:
    """An event message, or None for a control one (``subscribed``, ``keepalive``: ``id`` null)."""
    body = json.loads(raw)
    return Event.model_validate(body) if body.get("id") is not None else None


class Client(Routes):
    """REST API v1, blocking; ``with Client(url, key) as pf: pf.submit(…)``.

    Failures that changed nothing are retried ``max_retries`` times, waiting ``Retry-After`` (or
    0.5 s, 1 s, 2 s …) capped at ``max_retry_wait_s``; see :class:`~orchestrator.sdk._core.Call`.
    ``transport`` goes to httpx (tests, proxies, custom TLS).
    """

    def __init__(
        self, base_url: str, api_key: str | None = None, *, timeout: float = 30,
        transport: httpx.BaseTransport | None = None, max_retries: int = 3, max_retry_wait_s: float = 30.0,
    ) -> None:  # fmt: skip
        self._config = _Config(base_url, api_key, timeout=timeout, max_retries=max_retries,
                               max_retry_wait_s=max_retry_wait_s)  # fmt: skip
        self._http = httpx.Client(base_url=self._config.base_url, headers=self._config.headers, timeout=timeout,
                                  transport=transport)  # fmt: skip

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, safe: bool = True, stream: bool = False,
                 **kwargs: Any) -> httpx.Response:  # fmt: skip
        """Send, resending as ``retry_wait`` says; a non-2xx answer raises its exception. With
        ``stream`` a successful answer's body is not read yet: the caller closes it."""
        request = self._http.build_request(method, path, **kwargs)
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError:
                wait = retry_wait(None, attempt, safe=safe, max_retries=self._config.max_retries)
                if wait is None:
                    raise
            else:
                if response.is_success:
                    return response
                if stream:
                    response.read()
                    response.close()
                wait = retry_wait(response, attempt, safe=safe, max_retries=self._config.max_retries)
                if wait is None:
                    raise error_from_response(response)
            time.sleep(min(wait, self._config.max_retry_wait_s))
            attempt += 1

    def _send(self, call: Call[Any]) -> Any:
        return call.parse(self._request(call.method, call.path, safe=call.safe, **call.request_args()))

    def _pages(self, path: str, params: dict[str, Any], model: type[BaseModel]) -> Iterator[Any]:
        query: dict[str, Any] | None = {k: v for k, v in params.items() if v is not None}
        while query is not None:
            body = self._request("GET", path, params=query).json()
            yield from (model.model_validate(item) for item in body["items"])
            query = next_page(body, query)

    def _download(self, path: str, dest: str | os.PathLike[str], params: dict[str, Any] | None = None) -> Path:
        target = Path(dest)
        partial = target.with_name(target.name + ".part")
        response = self._request("GET", path, params=params, stream=True)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        partial.replace(target)
        return target

    def wait(self, task_id: str | uuid.UUID, timeout_s: float, poll_s: float = 1.0, *,
             until: frozenset[str] = FINAL_STATUSES) -> m.TaskOut:  # fmt: skip
        """Poll until the task's status is in ``until`` (default: final); ``TaskWaitTimeout`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            task = self.task(task_id)
            if task.status in until:
                return task
            left = deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(task, timeout_s)
            time.sleep(min(poll_s, left))

    def events(self, task_id: str | uuid.UUID | None = None, *, after: int | None = None) -> Iterator[Event]:
        """Your tenant's events as they happen (one task's with ``task_id``; those after event id
        ``after`` first), for as long as you iterate. A server restart or a too-slow reader is resumed
        where it left off; a refusal raises its exception (``Unauthenticated``, ``NotFound`` …)."""
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        resumes = 0
        while True:
            url = events_url(self._config.base_url, task_id, after)
            try:
                with connect(url, additional_headers=self._config.socket_headers(), proxy=None,
                             open_timeout=self._config.timeout) as ws:  # fmt: skip
                    for raw in ws:
                        if (event := _event_or_none(raw)) is not None:
                            after = event.id
                            yield event
            except ConnectionClosed as exc:
                closed = exc.rcvd
                if closed is not None and (error := error_from_close(closed.code, closed.reason)) is not None:
                    raise error from None
                if closed is None or closed.code not in RESUMABLE_CLOSES or resumes >= MAX_RESUMES:
                    raise
                resumes += 1
                continue
            return

    def logcat(self, session_id: str | uuid.UUID, *, filter: Iterable[str] | None = None, grep: str | None = None,
               tail: int | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
        """The session phone's log as it grows, a dict per line (``{"time", "pid", "tid", "priority",
        "tag", "message", "line"}``), until you stop iterating or the session lets its phone go."""
        params = logcat_params(filter, grep, tail, dump=False)
        response = self._request("GET", f"/api/v1/sessions/{session_id}/logcat", params=params, stream=True,
                                 timeout=httpx.Timeout(self._config.timeout, read=None))  # fmt: skip
        parser = SseParser()
        try:
            for line in response.iter_lines():
                if (message := parser.feed(line)) is not None:
                    event, data = message
                    if event == "end":
                        return
                    yield data
        finally:
            response.close()


class AsyncClient(Routes):
    """REST API v1 for asyncio: ``async with AsyncClient(url, key) as pf: await pf.submit(…)``.

    The same methods as :class:`Client`, awaited; listings, ``events`` and ``logcat`` are async
    iterators. ``http``: an ``httpx.AsyncClient`` of yours to send with (left open on close).
    """

    def __init__(
        self, base_url: str | None = None, api_key: str | None = None, *, http: httpx.AsyncClient | None = None,
        timeout: float = 30, transport: httpx.AsyncBaseTransport | None = None, max_retries: int = 3,
        max_retry_wait_s: float = 30.0,
    ) -> None:  # fmt: skip
        if http is None and base_url is None:
            raise ValueError("give base_url, or an httpx.AsyncClient as http")
        self._config = _Config(base_url or (str(http.base_url) if http else ""), api_key,
                               timeout=timeout, max_retries=max_retries, max_retry_wait_s=max_retry_wait_s)  # fmt: skip
        self._owned = http is None
        self._http = http or httpx.AsyncClient(base_url=self._config.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def _request(self, method: str, path: str, *, safe: bool = True, stream: bool = False,
                       headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:  # fmt: skip
        request = self._http.build_request(method, path, headers={**self._config.headers, **(headers or {})},
                                           **kwargs)  # fmt: skip
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError:
                wait = retry_wait(None, attempt, safe=safe, max_retries=self._config.max_retries)
                if wait is None:
                    raise
            else:
                if response.is_success:
                    return response
                if stream:
                    await response.aread()
                    await response.aclose()
                wait = retry_wait(response, attempt, safe=safe, max_retries=self._config.max_retries)
                if wait is None:
                    raise error_from_response(response)
            await asyncio.sleep(min(wait, self._config.max_retry_wait_s))
            attempt += 1

    async def _send(self, call: Call[Any]) -> Any:
        return call.parse(await self._request(call.method, call.path, safe=call.safe, **call.request_args()))

    async def _pages(self, path: str, params: dict[str, Any], model: type[BaseModel]) -> AsyncIterator[Any]:
        query: dict[str, Any] | None = {k: v for k, v in params.items() if v is not None}
        while query is not None:
            body = (await self._request("GET", path, params=query)).json()
            for item in body["items"]:
                yield model.model_validate(item)
            query = next_page(body, query)

    async def _download(self, path: str, dest: str | os.PathLike[str], params: dict[str, Any] | None = None) -> Path:
        target = Path(dest)
        partial = target.with_name(target.name + ".part")
        response = await self._request("GET", path, params=params, stream=True)
        try:
            with partial.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            await response.aclose()
        partial.replace(target)
        return target

    async def wait(self, task_id: str | uuid.UUID, timeout_s: float, poll_s: float = 1.0, *,
                   until: frozenset[str] = FINAL_STATUSES) -> m.TaskOut:  # fmt: skip
        """Poll until the task's status is in ``until`` (default: final); ``TaskWaitTimeout`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            task = await self.task(task_id)
            if task.status in until:
                return task
            left = deadline - time.monotonic()
            if left <= 0:
                raise TaskWaitTimeout(task, timeout_s)
            await asyncio.sleep(min(poll_s, left))

    async def events(self, task_id: str | uuid.UUID | None = None, *, after: int | None = None) -> AsyncIterator[Event]:
        """Your tenant's events as they happen; see :meth:`Client.events`."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        resumes = 0
        while True:
            url = events_url(self._config.base_url, task_id, after)
            try:
                async with connect(url, additional_headers=self._config.socket_headers(), proxy=None,
                                   open_timeout=self._config.timeout) as ws:  # fmt: skip
                    async for raw in ws:
                        if (event := _event_or_none(raw)) is not None:
                            after = event.id
                            yield event
            except ConnectionClosed as exc:
                closed = exc.rcvd
                if closed is not None and (error := error_from_close(closed.code, closed.reason)) is not None:
                    raise error from None
                if closed is None or closed.code not in RESUMABLE_CLOSES or resumes >= MAX_RESUMES:
                    raise
                resumes += 1
                continue
            return

    async def logcat(self, session_id: str | uuid.UUID, *, filter: Iterable[str] | None = None,
                     grep: str | None = None, tail: int | None = None) -> AsyncIterator[dict[str, Any]]:  # fmt: skip
        """The session phone's log as it grows; see :meth:`Client.logcat`."""
        params = logcat_params(filter, grep, tail, dump=False)
        response = await self._request("GET", f"/api/v1/sessions/{session_id}/logcat", params=params, stream=True,
                                       timeout=httpx.Timeout(self._config.timeout, read=None))  # fmt: skip
        parser = SseParser()
        try:
            async for line in response.aiter_lines():
                if (message := parser.feed(line)) is not None:
                    event, data = message
                    if event == "end":
                        return
                    yield data
        finally:
            await response.aclose()
