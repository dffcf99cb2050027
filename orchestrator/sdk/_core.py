"""Every route of REST API v1, written once for both clients.

A route method builds a :class:`Call` (method, path, query, body, whether resending is safe, and how
to read the answer) and hands it to ``self._send``: the sync client sends it and returns the parsed
answer, the async client returns a coroutine of it. Listing routes go through ``self._pages`` (an
iterator or an async iterator of models), downloads through ``self._download``; only those three,
the events socket and the logcat stream are written per client (``orchestrator/sdk/client.py``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from orchestrator.sdk import models as m

__all__ = ["Call", "Routes", "SseParser", "events_url", "next_page"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer. ``safe``: sending it twice cannot act twice (a read,
    a replace, a submission with its Idempotency-Key), so it is resent after a lost connection or a
    500/502/504; every call is resent after 429/503 (answers that changed nothing)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    safe: bool = True

    def request_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"params": _without_none(self.params or {}), "headers": self.headers}
        if self.json is not None:
            args["json"] = self.json
        if self.content is not None:
            args["content"] = self.content
        return args


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate(response.json())


def _models(cls: type[M]) -> Callable[[httpx.Response], list[M]]:
    return lambda response: [cls.model_validate(item) for item in response.json()]


def _json(response: httpx.Response) -> Any:
    return response.json()


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _text(response: httpx.Response) -> str:
    return response.text


def _nothing(response: httpx.Response) -> None:
    return None


def next_page(body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | None:
    """The query of the page after ``body`` (a ``{"items", "next_cursor"}`` page), or None: it was the last."""
    cursor = body.get("next_cursor")
    return {**params, "cursor": cursor} if cursor else None


def events_url(base_url: str, task_id: str | uuid.UUID | None, after: int | None) -> str:
    """``ws(s)://…/api/v1/events`` for the base URL, optionally one task's, resumed after an event id."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    query = urlencode(_without_none({"task_id": task_id and str(task_id), "after": after}))
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/api/v1/events", query, ""))


# Closes after which the events socket is reopened where it left off: the server restarting (1001,
# 1012) or dropping a consumer it found too slow (1013).
RESUMABLE_CLOSES = frozenset({1001, 1012, 1013})
MAX_RESUMES = 5


class SseParser:
    """Server-sent events, fed line by line: ``feed`` returns ``(event, data)`` at each blank line."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, Any] | None:
        if line == "":
            if not self._data:
                return None
            event, data = self._event, "\n".join(self._data)
            self._event, self._data = "message", []
            return event, json.loads(data)
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def logcat_params(
    filter: Iterable[str] | None, grep: str | None, tail: int | None, *, dump: bool
) -> dict[str, Any]:
    return _without_none({"filter": list(filter) if filter else None, "grep": grep, "tail": tail,
                          "dump": "true" if dump else None})  # fmt: skip


class Routes:
    """The routes; a client supplies ``_send``, ``_pages`` and ``_download``. Answers are the models
    of ``orchestrator.sdk.models`` (a few free-form ones are dicts); refusals raise the exceptions
    of ``orchestrator.sdk.errors``."""

    def _send(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def _pages(self, path: str, params: dict[str, Any], model: type[BaseModel]) -> Any:
        raise NotImplementedError

    def _download(self, path: str, dest: str | os.PathLike[str], params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    # -- tasks -------------------------------------------------------------------------------------

    def submit(self, instruction: str, *, idempotency_key: str | None = None, **fields: Any) -> m.TaskOut:
        """Submit a task → ``TaskOut`` (``queued``; the original task when the key was seen before).

        ``fields``: ``max_steps``, ``timeout_s``, ``device_profile``, ``model``, ``webhook_url``,
        ``metadata``, ``retry_after_acting``, ``max_tries``, ``subgoals``, ``on_step_failure``,
        ``personal_phone_id``, ``allowed_apps`` … (None ones left out). Every submission carries an
        ``Idempotency-Key`` (a fresh one unless given), kept across this call's retries, so a lost
        answer never makes two tasks; the same key with another body is ``IdempotencyConflict``.
        """
        body = {"instruction": instruction, **_without_none(fields)}
        key = idempotency_key or f"pfsdk-{uuid.uuid4()}"
        return self._send(Call("POST", "/api/v1/tasks", _model(m.TaskOut), json=body,
                               headers={"Idempotency-Key": key}))  # fmt: skip

    def task(self, task_id: str | uuid.UUID) -> m.TaskOut:
        """A task → ``TaskOut``."""
        return self._send(Call("GET", f"/api/v1/tasks/{task_id}", _model(m.TaskOut)))

    def tasks(self, status: str | None = None, *, personal_phone_id: str | None = None, limit: int = 50) -> Iterator[m.TaskOut]:
        """Every task of your tenant, newest first, fetched ``limit`` (1–100) at a time."""
        params = {"status": status, "personal_phone_id": personal_phone_id, "limit": limit}
        return self._pages("/api/v1/tasks", params, m.TaskOut)

    def cancel(self, task_id: str | uuid.UUID) -> m.TaskOut:
        """Cancel → ``TaskOut``: a queued task ends at once, a running one gets ``cancel_requested``."""
        return self._send(Call("POST", f"/api/v1/tasks/{task_id}/cancel", _model(m.TaskOut), safe=False))

    def confirm(self, task_id: str | uuid.UUID, approved: bool) -> m.TaskOut:
        """Answer the agent's request to confirm an action → ``TaskOut``; ``InvalidTransition`` if it asks none."""
        return self._send(Call("POST", f"/api/v1/tasks/{task_id}/confirm", _model(m.TaskOut),
                               json={"approved": approved}, safe=False))  # fmt: skip

    def reply(self, task_id: str | uuid.UUID, answer: str) -> m.TaskOut:
        """Answer the agent's question → ``TaskOut``."""
        return self._send(Call("POST", f"/api/v1/tasks/{task_id}/reply", _model(m.TaskOut),
                               json={"answer": answer}, safe=False))  # fmt: skip

    def takeover(self, task_id: str | uuid.UUID, note: str | None = None) -> m.TaskOut:
        """Take the phone from the agent (the task waits for your ``handback``) → ``TaskOut``."""
        return self._send(Call("POST", f"/api/v1/tasks/{task_id}/takeover", _model(m.TaskOut),
                               json={"note": note}, safe=False))  # fmt: skip

    def handback(self, task_id: str | uuid.UUID, note: str) -> m.TaskOut:
        """Give the phone back to the agent, saying what you did → ``TaskOut``."""
        return self._send(Call("POST", f"/api/v1/tasks/{task_id}/handback", _model(m.TaskOut),
                               json={"note": note}, safe=False))  # fmt: skip

    def steps(self, task_id: str | uuid.UUID) -> Iterator[m.StepOut]:
        """The task's steps (``StepOut``), oldest first, across all pages."""
        return self._pages(f"/api/v1/tasks/{task_id}/steps", {"limit": 100}, m.StepOut)

    def step_screenshot(self, task_id: str | uuid.UUID, index: int) -> bytes:
        """The image (JPEG or PNG bytes) the model saw at step ``index``."""
        return self._send(Call("GET", f"/api/v1/tasks/{task_id}/steps/{index}/screenshot", _bytes))

    def download_trajectory(self, task_id: str | uuid.UUID, path: str | os.PathLike[str]) -> Path:
        """Save the task's trajectory zip to ``path`` (written whole or not at all) → the path."""
        return self._download(f"/api/v1/tasks/{task_id}/trajectory", path)

    def download_recording(
        self, kind: Literal["task", "session"], target_id: str | uuid.UUID, path: str | os.PathLike[str]
    ) -> Path:
        """Save the screen recording (MP4) of a task or a session to ``path`` → the path; ``NotFound`` when none."""
        return self._download(f"/api/v1/{kind}s/{target_id}/recording", path)

    def create_share_link(self, **fields: Any) -> dict[str, Any]:
        """A link that shows a task, session or (the operator's) device to someone without a key (``POST /api/v1/share-links``; fields as
        docs/api.md says) → the link. Not resent after a lost connection (a replay could make two)."""
        return self._send(Call("POST", "/api/v1/share-links", _json, json=fields, safe=False))

    def share_links(self, target_id: str | uuid.UUID | None = None) -> list[m.ShareLinkOut]:
        """Your share links (a tenant admin: the tenant's), each with its openings; only those to one
        task, session or device with ``target_id``."""
        params = {"target_id": str(target_id)} if target_id is not None else None
        return self._send(Call("GET", "/api/v1/share-links", _models(m.ShareLinkOut), params=params))

    def share_link(self, link_id: str | uuid.UUID) -> m.ShareLinkOut:
        """One share link and its openings (when, from where)."""
        return self._send(Call("GET", f"/api/v1/share-links/{link_id}", _model(m.ShareLinkOut)))

    def delete_share_link(self, link_id: str | uuid.UUID) -> None:
        """The link shows nothing more."""
        return self._send(Call("DELETE", f"/api/v1/share-links/{link_id}", _nothing, safe=False))

    def webhook_deliveries(self, task_id: str | uuid.UUID) -> Iterator[m.WebhookDeliveryOut]:
        """The task's webhook deliveries (``WebhookDeliveryOut``), across all pages."""
        return self._pages(f"/api/v1/tasks/{task_id}/webhook-deliveries", {"limit": 100}, m.WebhookDeliveryOut)

    # -- evals -------------------------------------------------------------------------------------

    def create_eval(self, suite: str, models: list[str], **fields: Any) -> dict[str, Any]:
        """Run a suite (fields: ``repeat``, ``seed``, ``templates``, ``parallel``, ``max_steps``, ``timeout_s``) → dict."""
        body = {"suite": suite, "models": models, **_without_none(fields)}
        return self._send(Call("POST", "/api/v1/evals", _json, json=body, safe=False))

    def evals(self) -> list[dict[str, Any]]:
        """Your tenant's evals (dicts), newest first."""
        return self._send(Call("GET", "/api/v1/evals", _json))

    def eval(self, eval_id: str | uuid.UUID) -> dict[str, Any]:
        """An eval's report so far (a dict)."""
        return self._send(Call("GET", f"/api/v1/evals/{eval_id}", _json))

    # -- schedules ---------------------------------------------------------------------------------

    def create_schedule(self, task: dict[str, Any], **fields: Any) -> m.ScheduleOut:
        """A schedule of ``task`` (a submission's body) → ``ScheduleOut``; ``fields``: ``cron`` and
        ``timezone``, or ``interval_s``; ``catch_up``, ``overlap``, ``paused``. Not resent after a
        lost connection (no idempotency key: a replay could make two)."""
        body = {"task": task, **_without_none(fields)}
        return self._send(Call("POST", "/api/v1/schedules", _model(m.ScheduleOut), json=body, safe=False))

    def schedules(self, limit: int = 50) -> Iterator[m.ScheduleOut]:
        return self._pages("/api/v1/schedules", {"limit": limit}, m.ScheduleOut)

    def schedule(self, schedule_id: str | uuid.UUID) -> m.ScheduleOut:
        return self._send(Call("GET", f"/api/v1/schedules/{schedule_id}", _model(m.ScheduleOut)))

    def update_schedule(self, schedule_id: str | uuid.UUID, **fields: Any) -> m.ScheduleOut:
        """Change any field (``PATCH``), e.g. ``interval_s=60`` or ``paused=True`` → ``ScheduleOut``."""
        return self._send(Call("PATCH", f"/api/v1/schedules/{schedule_id}", _model(m.ScheduleOut), json=fields))

    def delete_schedule(self, schedule_id: str | uuid.UUID) -> None:
        return self._send(Call("DELETE", f"/api/v1/schedules/{schedule_id}", _nothing, safe=False))

    def schedule_runs(self, schedule_id: str | uuid.UUID, limit: int = 50) -> Iterator[m.TaskOut]:
        """The schedule's runs (``TaskOut``), newest first."""
        return self._pages(f"/api/v1/schedules/{schedule_id}/runs", {"limit": limit}, m.TaskOut)

    # -- sessions ----------------------------------------------------------------------------------

    def start_session(
        self, *, ttl_s: int = 600, device_profile: dict[str, Any] | str | None = None, wait_s: float = 10,
        personal_phone_id: str | uuid.UUID | None = None,
    ) -> m.SessionOut:  # fmt: skip
        """Lease a phone → ``SessionOut``; ``NoDeviceAvailable`` when none came free in ``wait_s``.
        Not resent after a lost connection: the first may have leased a phone."""
        body = _without_none({"ttl_s": ttl_s, "device_profile": device_profile, "wait_s": wait_s,
                              "personal_phone_id": personal_phone_id and str(personal_phone_id)})  # fmt: skip
        return self._send(Call("POST", "/api/v1/sessions", _model(m.SessionOut), json=body, safe=False))

    def session(self, session_id: str | uuid.UUID) -> m.SessionOut:
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}", _model(m.SessionOut)))

    def sessions(self, state: str | None = None, limit: int = 20) -> Iterator[m.SessionOut]:
        return self._pages("/api/v1/sessions", {"state": state, "limit": limit}, m.SessionOut)

    def keepalive(self, session_id: str | uuid.UUID) -> m.SessionOut:
        """Push the session's expiry ``ttl_s`` further → ``SessionOut``."""
        return self._send(Call("POST", f"/api/v1/sessions/{session_id}/keepalive", _model(m.SessionOut)))

    def close_session(self, session_id: str | uuid.UUID) -> m.SessionOut:
        """Give the phone back → ``SessionOut``; an ended session is answered as it is (safe to resend)."""
        return self._send(Call("DELETE", f"/api/v1/sessions/{session_id}", _model(m.SessionOut)))

    # -- a session's phone (the device API) --------------------------------------------------------

    def screenshot(
        self, session_id: str | uuid.UUID, *, format: Literal["png", "jpeg"] = "png", scale: float = 1.0,
        quality: int = 80, max_side: int | None = None,
    ) -> bytes:  # fmt: skip
        """The screen now (PNG or JPEG bytes)."""
        params = {"format": format, "scale": scale, "quality": quality, "max_side": max_side}
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}/screenshot", _bytes, params=params))

    def ui_tree(self, session_id: str | uuid.UUID) -> dict[str, Any]:
        """``{"screen", "package", "elements": [{"id", "kind", "text", "bounds", …}]}``."""
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}/ui", _json))

    def ui_xml(self, session_id: str | uuid.UUID) -> str:
        """The raw view hierarchy (uiautomator XML)."""
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}/ui", _text, params={"format": "xml"}))

    def input(self, session_id: str | uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
        """One input (``{"type": "tap", …}``, docs/api.md) → what it did; not resent after a lost connection."""
        return self._send(Call("POST", f"/api/v1/sessions/{session_id}/input", _json, json=body, safe=False))

    def tap(
        self, session_id: str | uuid.UUID, x: int | None = None, y: int | None = None, *,
        element_id: str | None = None, kind: Literal["tap", "double_tap", "long_press"] = "tap",
    ) -> dict[str, Any]:  # fmt: skip
        """Tap a point (screen pixels) or an element of ``ui_tree`` by id."""
        target = {"element_id": element_id} if element_id is not None else {"x": x, "y": y}
        return self.input(session_id, {"type": kind, **target})

    def swipe(
        self, session_id: str | uuid.UUID, *, direction: Literal["up", "down", "left", "right"] | None = None,
        points: tuple[int, int, int, int] | None = None, duration_ms: int = 300,
    ) -> dict[str, Any]:  # fmt: skip
        """Swipe in a direction, or along ``points`` (x1, y1, x2, y2)."""
        body: dict[str, Any] = {"type": "swipe", "duration_ms": duration_ms}
        if direction is not None:
            body["direction"] = direction
        if points is not None:
            body |= dict(zip(("x1", "y1", "x2", "y2"), points, strict=True))
        return self.input(session_id, body)

    def type_text(self, session_id: str | uuid.UUID, text: str, *, clear: bool = False) -> dict[str, Any]:
        return self.input(session_id, {"type": "text", "text": text, "clear": clear})

    def press_key(self, session_id: str | uuid.UUID, key: str) -> dict[str, Any]:
        return self.input(session_id, {"type": "key", "key": key})

    def launch(self, session_id: str | uuid.UUID, app: str) -> dict[str, Any]:
        """Start an app by package or label → ``{"type": "launch", "package", …}``."""
        return self._send(Call("POST", f"/api/v1/sessions/{session_id}/launch", _json, json={"app": app},
                               safe=False))  # fmt: skip

    def push_file(self, session_id: str | uuid.UUID, path: str, data: bytes) -> dict[str, Any]:
        """Write ``data`` to ``path`` on the phone (inside ``device_api.file_roots``) →
        ``{"type": "push_file", "path", "bytes"}``. Resent safely: a push replaces the file.
        ``PathNotAllowed`` outside the roots, ``PayloadTooLarge`` over ``device_api.file_max_bytes``."""
        return self._send(Call("PUT", f"/api/v1/sessions/{session_id}/files", _json, params={"path": path},
                               content=data))  # fmt: skip

    def pull_file(self, session_id: str | uuid.UUID, path: str) -> bytes:
        """The bytes of the file at ``path`` on the phone (``FileNotFound`` when there is none)."""
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}/files", _bytes, params={"path": path}))

    def download_file(self, session_id: str | uuid.UUID, path: str, dest: str | os.PathLike[str]) -> Path:
        """Save the file at ``path`` on the phone to ``dest`` here, streamed (whole or not at all) → ``dest``."""
        return self._download(f"/api/v1/sessions/{session_id}/files", dest, {"path": path})

    def install_apk(self, session_id: str | uuid.UUID, apk: bytes) -> dict[str, Any]:
        """Install an APK (an update keeps the app's data) → ``{"type": "install_apk", "package", "bytes"}``;
        ``ApkRejected`` with the package manager's reason. Resent safely: installing again replaces it."""
        return self._send(Call("POST", f"/api/v1/sessions/{session_id}/apps", _json, content=apk,
                               headers={"Content-Type": "application/vnd.android.package-archive"}))  # fmt: skip

    def logcat_dump(
        self, session_id: str | uuid.UUID, *, filter: Iterable[str] | None = None, grep: str | None = None,
        tail: int | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The log the phone holds now: a list of ``{"time", "pid", "tid", "priority", "tag", "message", "line"}``
        (``logcat`` follows it as it grows)."""
        params = logcat_params(filter, grep, tail, dump=True)
        return self._send(Call("GET", f"/api/v1/sessions/{session_id}/logcat", lambda r: r.json()["lines"],
                               params=params))  # fmt: skip

    def webrtc_offer(self, kind: Literal["devices", "tasks", "sessions"], target_id: str | uuid.UUID, sdp: str) -> m.WebRtcAnswerOut:
        """Live view: send a WebRTC offer for a device, task or session's phone → ``WebRtcAnswerOut``."""
        return self._send(Call("POST", f"/api/v1/{kind}/{target_id}/webrtc", _model(m.WebRtcAnswerOut),
                               json={"type": "offer", "sdp": sdp}, safe=False))  # fmt: skip

    def webrtc_config(self) -> m.WebRtcConfigOut:
        """The ICE servers a viewer uses → ``WebRtcConfigOut``."""
        return self._send(Call("GET", "/api/v1/webrtc/config", _model(m.WebRtcConfigOut)))

    # -- devices -----------------------------------------------------------------------------------

    def devices(self, state: str | None = None, limit: int = 50) -> Iterator[m.DeviceOut]:
        return self._pages("/api/v1/devices", {"state": state, "limit": limit}, m.DeviceOut)

    def device(self, device_id: str | uuid.UUID) -> m.DeviceOut:
        return self._send(Call("GET", f"/api/v1/devices/{device_id}", _model(m.DeviceOut)))

    def register_device(self, serial: str, *, profile: dict[str, Any] | None = None,
                        labels: dict[str, str] | None = None) -> m.DeviceOut:  # fmt: skip
        """Add a phone reachable over ADB to the pool (operator) → ``DeviceOut``; ``DeviceExists`` if it is there."""
        body = _without_none({"serial": serial, "profile": profile, "labels": labels})
        return self._send(Call("POST", "/api/v1/devices", _model(m.DeviceOut), json=body, safe=False))

    def drain_device(self, device_id: str | uuid.UUID) -> m.DeviceOut:
        """No new leases; the current one finishes (operator) → ``DeviceOut``."""
        return self._send(Call("POST", f"/api/v1/devices/{device_id}/drain", _model(m.DeviceOut), safe=False))

    def undrain_device(self, device_id: str | uuid.UUID) -> m.DeviceOut:
        return self._send(Call("POST", f"/api/v1/devices/{device_id}/undrain", _model(m.DeviceOut), safe=False))

    def retire_device(self, device_id: str | uuid.UUID) -> m.DeviceOut:
        """Take the phone out of the pool for good (operator) → ``DeviceOut``."""
        return self._send(Call("POST", f"/api/v1/devices/{device_id}/retire", _model(m.DeviceOut), safe=False))

    # -- personal phones ---------------------------------------------------------------------------

    def create_personal_phone(self, name: str, **fields: Any) -> m.PersonalPhoneOut:
        """A phone of your own whose data lasts (fields: ``device_profile``, ``allowed_apps``) → ``PersonalPhoneOut``."""
        body = {"name": name, **_without_none(fields)}
        return self._send(Call("POST", "/api/v1/personal-phones", _model(m.PersonalPhoneOut), json=body,
                               safe=False))  # fmt: skip

    def personal_phones(self, scope: str | None = None, limit: int = 50) -> Iterator[m.PersonalPhoneOut]:
        return self._pages("/api/v1/personal-phones", {"scope": scope, "limit": limit}, m.PersonalPhoneOut)

    def personal_phone(self, personal_phone_id: str | uuid.UUID) -> m.PersonalPhoneOut:
        return self._send(Call("GET", f"/api/v1/personal-phones/{personal_phone_id}", _model(m.PersonalPhoneOut)))

    def update_personal_phone(self, personal_phone_id: str | uuid.UUID, **fields: Any) -> m.PersonalPhoneOut:
        """Rename it or change its ``allowed_apps`` → ``PersonalPhoneOut``."""
        return self._send(Call("PATCH", f"/api/v1/personal-phones/{personal_phone_id}",
                               _model(m.PersonalPhoneOut), json=fields))  # fmt: skip

    def delete_personal_phone(self, personal_phone_id: str | uuid.UUID, confirm: str) -> m.PersonalPhoneOut:
        """Delete it and its data; ``confirm`` is its name (``ConfirmationMismatch`` otherwise)."""
        return self._send(Call("DELETE", f"/api/v1/personal-phones/{personal_phone_id}",
                               _model(m.PersonalPhoneOut), params={"confirm": confirm}, safe=False))  # fmt: skip

    def personal_phone_thumbnail(self, personal_phone_id: str | uuid.UUID) -> bytes:
        """Its last screen (JPEG bytes)."""
        return self._send(Call("GET", f"/api/v1/personal-phones/{personal_phone_id}/thumbnail", _bytes))

    def export_personal_phone(self, personal_phone_id: str | uuid.UUID, path: str | os.PathLike[str]) -> Path:
        """Save its sealed export to ``path`` (whole or not at all) → the path."""
        return self._download(f"/api/v1/personal-phones/{personal_phone_id}/export", path)

    def import_personal_phone(self, archive: bytes, name: str | None = None) -> m.PersonalPhoneOut:
        """A personal phone from an export → ``PersonalPhoneOut``."""
        return self._send(Call("POST", "/api/v1/personal-phones/import", _model(m.PersonalPhoneOut),
                               params={"name": name}, content=archive, safe=False,
                               headers={"Content-Type": "application/octet-stream"}))  # fmt: skip

    # -- API keys, users, audit --------------------------------------------------------------------

    def api_keys(self) -> list[m.ApiKeyOut]:
        """Your tenant's keys (``ApiKeyOut``, without secrets; admin)."""
        return self._send(Call("GET", "/api/v1/api-keys", _models(m.ApiKeyOut)))

    def create_api_key(self, user: str, *, role: str = "member", name: str = "default") -> m.IssuedKeyOut:
        """Issue a key (admin) → ``IssuedKeyOut``, whose ``key`` is shown only here."""
        return self._send(Call("POST", "/api/v1/api-keys", _model(m.IssuedKeyOut),
                               json={"user": user, "role": role, "name": name}, safe=False))  # fmt: skip

    def revoke_api_key(self, key_id: str | uuid.UUID) -> m.ApiKeyOut:
        """→ ``ApiKeyOut``; ``LastAdminKey`` for a tenant's last working admin key."""
        return self._send(Call("POST", f"/api/v1/api-keys/{key_id}/revoke", _model(m.ApiKeyOut), safe=False))

    def set_user_role(self, user: str, role: str) -> m.UserOut:
        return self._send(Call("PUT", f"/api/v1/users/{user}/role", _model(m.UserOut), json={"role": role}))

    def delete_user(self, user: str) -> m.UserDeletedOut:
        """Revoke the user's keys and delete its personal phones (admin) → ``UserDeletedOut``."""
        return self._send(Call("DELETE", f"/api/v1/users/{user}", _model(m.UserDeletedOut), safe=False))

    def me(self) -> m.WhoAmIOut:
        """Who the key is → ``WhoAmIOut``."""
        return self._send(Call("GET", "/api/v1/auth/me", _model(m.WhoAmIOut)))

    def audit(self, action: str | None = None, *, tenant_id: str | None = None, limit: int = 50) -> Iterator[m.AuditEntryOut]:
        """Operators' and admins' actions (``AuditEntryOut``), newest first."""
        params = {"action": action, "tenant_id": tenant_id, "limit": limit}
        return self._pages("/api/v1/audit", params, m.AuditEntryOut)

    # -- webhook subscriptions (admin) -------------------------------------------------------------

    def create_webhook(self, url: str, events: list[str]) -> m.SubscriptionSecretOut:
        """Subscribe ``url`` to ``events`` → ``SubscriptionSecretOut`` (its ``secret`` shown only here)."""
        return self._send(Call("POST", "/api/v1/webhooks", _model(m.SubscriptionSecretOut),
                               json={"url": url, "events": events}, safe=False))  # fmt: skip

    def webhooks(self) -> list[m.SubscriptionOut]:
        return self._send(Call("GET", "/api/v1/webhooks", _models(m.SubscriptionOut)))

    def webhook(self, subscription_id: str | uuid.UUID) -> m.SubscriptionOut:
        return self._send(Call("GET", f"/api/v1/webhooks/{subscription_id}", _model(m.SubscriptionOut)))

    def rotate_webhook_secret(self, subscription_id: str | uuid.UUID) -> m.SubscriptionSecretOut:
        return self._send(Call("POST", f"/api/v1/webhooks/{subscription_id}/rotate-secret",
                               _model(m.SubscriptionSecretOut), safe=False))  # fmt: skip

    def delete_webhook(self, subscription_id: str | uuid.UUID) -> None:
        return self._send(Call("DELETE", f"/api/v1/webhooks/{subscription_id}", _nothing, safe=False))

    # -- secrets -----------------------------------------------------------------------------------

    def secrets(self) -> list[m.SecretOut]:
        """Your tenant's secrets (``SecretOut``: names and dates, never values)."""
        return self._send(Call("GET", "/api/v1/secrets", _models(m.SecretOut)))

    def create_secret(self, name: str, value: str) -> m.SecretOut:
        return self._send(Call("POST", "/api/v1/secrets", _model(m.SecretOut), json={"name": name, "value": value},
                               safe=False))  # fmt: skip

    def secret(self, name: str) -> m.SecretOut:
        return self._send(Call("GET", f"/api/v1/secrets/{name}", _model(m.SecretOut)))

    def rotate_secret(self, name: str, value: str) -> m.SecretOut:
        return self._send(Call("PUT", f"/api/v1/secrets/{name}", _model(m.SecretOut), json={"value": value}))

    def delete_secret(self, name: str) -> None:
        return self._send(Call("DELETE", f"/api/v1/secrets/{name}", _nothing, safe=False))

    # -- your tenant, the tenant registry (operator), usage, models, health ------------------------

    def tenant(self) -> m.TenantOut:
        return self._send(Call("GET", "/api/v1/tenant", _model(m.TenantOut)))

    def update_tenant(self, *, retention_days: int | None) -> m.TenantOut:
        return self._send(Call("PATCH", "/api/v1/tenant", _model(m.TenantOut),
                               json={"retention_days": retention_days}))  # fmt: skip

    def delete_tenant(self, confirm: str) -> m.TenantDeletionOut:
        """Delete your tenant and everything of it; ``confirm`` is its name → ``TenantDeletionOut``."""
        return self._send(Call("DELETE", "/api/v1/tenant", _model(m.TenantDeletionOut),
                               params={"confirm": confirm}, safe=False))  # fmt: skip

    def export_tenant(self, path: str | os.PathLike[str]) -> Path:
        """Save everything of your tenant (a zip) to ``path`` → the path."""
        return self._download("/api/v1/tenant/export", path)

    def tenants(self, limit: int = 50) -> Iterator[m.TenantEntryOut]:
        """Every tenant (``TenantEntryOut``; operator)."""
        return self._pages("/api/v1/tenants", {"limit": limit}, m.TenantEntryOut)

    def create_tenant(self, name: str, *, admin_user: str = "admin") -> m.TenantCreated:
        """A tenant and its first admin key (operator) → ``TenantCreated``."""
        return self._send(Call("POST", "/api/v1/tenants", _model(m.TenantCreated),
                               json={"name": name, "admin_user": admin_user}, safe=False))  # fmt: skip

    def tenant_limits(self, tenant_id: str | uuid.UUID) -> dict[str, Any]:
        """A tenant's limits → ``{"limits", "overrides", "defaults"}``."""
        return self._send(Call("GET", f"/api/v1/tenants/{tenant_id}/limits", _json))

    def set_tenant_limits(self, tenant_id: str | uuid.UUID, **limits: int | None) -> dict[str, Any]:
        """Replace your tenant's limit overrides (admin): ``max_concurrent_tasks``, ``max_personal_phones`` …;
        one left out takes the default, None is unlimited, 0 allows none → ``{"limits", "overrides", "defaults"}``."""
        return self._send(Call("PUT", f"/api/v1/tenants/{tenant_id}/limits", _json, json=limits))

    def usage(self, days: int | None = None) -> dict[str, Any]:
        """Your tenant's usage and quotas (a dict)."""
        return self._send(Call("GET", "/api/v1/usage", _json, params={"days": days}))

    def models(self) -> m.ModelListOut:
        """The model endpoints a task may name → ``ModelListOut``."""
        return self._send(Call("GET", "/api/v1/models", _model(m.ModelListOut)))

    def healthz(self) -> dict[str, Any]:
        return self._send(Call("GET", "/healthz", _json))

    def readyz(self) -> m.ReadinessOut:
        """The API's dependencies → ``ReadinessOut``; ``Unavailable``-family 503 when one is down."""
        return self._send(Call("GET", "/readyz", _model(m.ReadinessOut)))
