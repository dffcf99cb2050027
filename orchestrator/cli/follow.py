"""Following a task at a terminal (``phonefleet task submit --wait``, ``phonefleet task wait``).

A line per step and per status change as they happen, why the task waits (its ``waiting``: kind and
the agent's message), and the people's part at a terminal: a y/N prompt when the agent asks to
confirm an action, a prompt for its question. Lines go to stderr (stdout keeps the final task line or
JSON, for scripts); prompts only when stdin is a terminal, otherwise the request is printed and the
answer left to the dashboard or the API.

The source is the events WebSocket (``WS /api/v1/events?task_id=…&after=…``, docs/api.md "Events"):
from event 0, so nothing between the submit and the subscription is missed, and resumed after the
last id when the server restarts or closes a slow reader. When the socket cannot be used at all (a
proxy that drops WebSockets, an older server), the task and its steps are polled every ``poll_s``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from orchestrator.client import FINAL_STATUSES, PhoneFleetAPIError, PhoneFleetClient, TaskWaitTimeout
from orchestrator.sdk._core import MAX_RESUMES, RESUMABLE_CLOSES, events_url

__all__ = ["Follower", "follow", "prompt"]

IDLE_S = 0.3  # no event for this long: the replay is over, a pending request may be prompted for
_REFUSALS = {4401: "unauthenticated", 4403: "forbidden", 4404: "task_not_found", 4422: "validation_error"}
_ASKING = {
    "task.confirmation_requested": "confirmation",
    "task.question": "question",
    "task.takeover_requested": "takeover",
}


def prompt(text: str) -> str:
    """Ask at the terminal: the question on stderr (stdout keeps the task's final line), the answer
    from stdin. ``EOFError`` when stdin is closed."""
    print(text, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def describe_action(action: dict[str, Any] | None, element_label: str | None = None) -> str:
    """An agent's action for people (as the dashboard's ``describeAction``): ``Tap “Pay now”`` when
    the element's label is known, else ``Tap at (499, 393) on the screen``; ``Type “hello”``."""
    if not isinstance(action, dict):
        return ""
    verb = str(action.get("name") or action.get("action") or "an action").replace("_", " ")
    label = next(
        (v.strip() for v in (action.get("label"), action.get("element_label"), element_label)
         if isinstance(v, str) and v.strip()),
        None,
    )  # fmt: skip
    element = action.get("element")
    if isinstance(element, list) and len(element) == 2:
        return f"{verb} “{label}”" if label else f"{verb} at ({element[0]}, {element[1]}) on the screen"
    if isinstance(action.get("text"), str):
        return f"{verb} “{action['text']}”"
    if isinstance(action.get("app"), str):
        return f"Open {action['app']}"
    return verb


class Follower:
    """Turns a task's events (or polled states) into lines and prompts; tracks whether it ended."""

    def __init__(
        self,
        client: PhoneFleetClient,
        task_id: str,
        *,
        base_url: str,
        interactive: bool,
        out: TextIO | None = None,
        ask: Callable[[str], str] = prompt,
    ) -> None:
        self.client = client
        self.task_id = task_id
        self.base_url = base_url.rstrip("/")
        self.interactive = interactive
        self.out = out or sys.stderr
        self.ask = ask
        self.status: str | None = None
        self.last_id = 0  # the last event id handled
        self.steps_seen: set[int] = set()
        self._said: set[str] = set()  # waiting messages already shown (a request event repeats them)
        self._prompted: set[str] = set()  # requests already prompted for (event id, or `since` when polled)
        # The request to prompt for once the stream is idle: events replayed from the start may hold
        # its answer right behind it, and an answered request must not be asked again.
        self.pending: tuple[str, str] | None = None  # (kind, request id)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    # --- events ---------------------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> None:
        kind, payload = event.get("type"), event.get("payload") or {}
        if event.get("id") is not None:
            self.last_id = max(self.last_id, int(event["id"]))
        if kind == "task.step":
            self.step(payload)
        elif kind in ("task.created", "task.status"):
            to = payload.get("to") or ("queued" if kind == "task.created" else None)
            if to and to != self.status:
                reason = f" ({payload['reason']})" if payload.get("reason") else ""
                frm = f"{payload['from']} → " if payload.get("from") else ""
                self.say(f"status: {frm}{to}{reason}")
                self.status = to
            self.waiting(payload.get("waiting"), requests_follow=True)
        elif kind == "task.waiting":
            self.waiting(payload.get("waiting"), requests_follow=True)
        elif kind == "task.retrying" and payload.get("message"):
            self.say(f"retrying: {payload['message']}")
        elif kind in _ASKING:
            self.asked(_ASKING[kind], payload, event_id=str(event.get("id")))
        elif kind == "task.confirmation":
            self.pending = None
            self.say(f"answered: {'approved' if payload.get('approved') else 'denied'}")
        elif kind == "task.reply":
            self.pending = None
            self.say(f"answered: {payload.get('answer')}")
        elif kind == "task.handback":
            self.pending = None
            note = payload.get("note")
            self.say("handed back" + (f": {note}" if note else ""))
        elif kind == "task.takeover":
            self.say("a person took over the phone")

    def step(self, step: dict[str, Any]) -> None:
        index = step.get("index")
        if index in self.steps_seen:
            return
        self.steps_seen.add(index)
        app = f"[{step['current_app']}] " if step.get("current_app") else ""
        result = step.get("result")
        tail = "" if result in (None, "ok") else f"  → {result}"
        actor = "person: " if step.get("actor") == "user" else ""
        self.say(f"step {index}: {app}{actor}{step.get('action_text') or ''}{tail}")

    def waiting(self, waiting: dict[str, Any] | None, *, requests_follow: bool = False) -> None:
        """Say why the task waits, once. With ``requests_follow`` (events), a wait for a person is
        left to the agent's request event, which says the same and more (the action, the prompt)."""
        if not waiting or (requests_follow and waiting.get("kind") in _ASKING.values()):
            return
        message = waiting.get("message") or ""
        key = f"{waiting.get('kind')}|{message}"
        if key in self._said or message in self._said:
            return
        self._said.add(key)
        self.say(
            f"waiting ({waiting.get('kind')}): {message}" if message else f"waiting ({waiting.get('kind')})"
        )

    def asked(self, kind: str, payload: dict[str, Any], *, event_id: str) -> None:
        """The agent asks a person: show it; at a terminal, take the answer."""
        message = payload.get("message") or payload.get("question") or ""
        self._said.add(message)
        if kind == "takeover":
            self.say(f"waiting (takeover): {message}")
            self.say(f"  take over and hand back in the dashboard: {self.base_url}/#/tasks/{self.task_id}")
            return
        if kind == "confirmation":
            action = describe_action(payload.get("action"), payload.get("element_label"))
            self.say(f"waiting (confirmation): {message}" + (f" — {action}" if action else ""))
        else:
            self.say(f"waiting (question): {message}")
        if not self.interactive:
            self.say(f"  answer in the dashboard ({self.base_url}/#/tasks/{self.task_id}) or the API")
            return
        self.pending = (kind, event_id)

    def idle(self) -> None:
        """Nothing more to read for now: prompt for the agent's pending request (at a terminal)."""
        if self.pending is None or self.ended or not self.interactive:
            return
        kind, request_id = self.pending
        self.pending = None
        if request_id in self._prompted:
            return
        self._prompted.add(request_id)
        try:
            if kind == "confirmation":
                answer = self.ask("Approve? [y/N] ").strip().lower()
                self._answer(lambda: self.client.confirm(self.task_id, answer in ("y", "yes")))
            else:
                answer = self.ask("Your answer (empty: answer elsewhere): ").strip()
                if answer:
                    self._answer(lambda: self.client.reply(self.task_id, answer))
        except EOFError:  # stdin closed: leave it to the dashboard
            self.interactive = False

    def _answer(self, send: Callable[[], Any]) -> None:
        try:
            send()
        except PhoneFleetAPIError as exc:  # answered elsewhere first, or the task moved on
            self.say(f"  not sent: {exc.status} {exc.code}: {exc.message}")

    # --- polling --------------------------------------------------------------------------------

    def poll(self) -> None:
        """One look at the task and its steps (when the events socket cannot be used)."""
        task = self.client.get(self.task_id)
        for step in self.client.steps(self.task_id):
            self.step(step)
        status = task.get("status")
        if status != self.status:
            reason = f" ({task['reason']})" if task.get("reason") and status in FINAL_STATUSES else ""
            self.say(f"status: {status}{reason}")
            self.status = status
        waiting = task.get("waiting")
        if waiting and waiting.get("kind") in ("confirmation", "question"):
            # No request event to key the prompt on: the wait's start stands for it.
            kind = waiting["kind"]
            payload = {"message": waiting.get("message") or ""}
            since = f"wait {waiting.get('since')}"
            # Already said (and prompted) from its request event, before the socket gave way to polling.
            if since not in self._said and payload["message"] not in self._said:
                self._said.add(since)
                self.asked(kind, payload, event_id=since)
                self.idle()
        else:
            self.waiting(waiting)


def follow(
    client: PhoneFleetClient,
    base_url: str,
    api_key: str,
    task_id: str,
    *,
    timeout_s: float,
    poll_s: float = 1.0,
    interactive: bool = False,
    out: TextIO | None = None,
    ask: Callable[[str], str] = prompt,
) -> dict[str, Any]:
    """Follow ``task_id`` until it ends; its final state. ``TaskWaitTimeout`` after ``timeout_s``."""
    follower = Follower(client, task_id, base_url=base_url, interactive=interactive, out=out, ask=ask)
    deadline = time.monotonic() + timeout_s
    if not _over_socket(follower, api_key, deadline):
        while not follower.ended:
            follower.poll()
            left = deadline - time.monotonic()
            if follower.ended or left <= 0:
                break
            time.sleep(min(poll_s, left))
    task = client.get(task_id)
    if task.get("status") not in FINAL_STATUSES:
        raise TaskWaitTimeout(task, timeout_s)
    return task


def _over_socket(follower: Follower, api_key: str, deadline: float) -> bool:
    """Follow over the events socket until the task ends or time runs out: True. False when the
    socket cannot be used (the caller polls instead, from where this left off)."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
    from websockets.sync.client import connect

    resumes = 0
    while True:
        url = events_url(follower.base_url, follower.task_id, follower.last_id)
        try:
            with connect(
                url, additional_headers={"Authorization": f"Bearer {api_key}"}, proxy=None, open_timeout=10
            ) as ws:
                while not follower.ended:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return True
                    try:
                        raw = ws.recv(timeout=min(left, IDLE_S if follower.pending else 30.0))
                    except TimeoutError:
                        follower.idle()
                        continue
                    follower.event(json.loads(raw))
                return True
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            # shutting down, restarting, too slow (the SDK's list): resume with after=
            if code in RESUMABLE_CLOSES and resumes < MAX_RESUMES:
                resumes += 1
                continue
            if code in _REFUSALS:  # a bad key, not your task: said as the REST API would say it
                raise PhoneFleetAPIError(code - 4000, _REFUSALS[code], exc.rcvd.reason or "refused") from None
            return False  # anything else (4503 database unavailable, …): polling retries
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError, ValueError):
            return False
