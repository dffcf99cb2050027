"""A person's input on a task's phone, recorded as the task's steps (``actor`` = ``user``).

While a task waits for a person or is under their control (``waiting_for_user``, ``user_control``),
every tap, swipe, key and text they send on the live view's ``control`` channel that reached the
phone becomes a step in the task's trajectory, numbered in the same sequence as the agent's
(``orchestrator/db/steps.py``), with a ``task.step`` event {index, action_text, result,
current_app, actor}. Its action uses the agent's vocabulary (``Tap`` at ``element`` on the 0–999
grid, ``Swipe`` start/end, ``Back``, ``Home``, ``Type``…), so a trajectory reads the same whoever
acted.

The step's screenshot is the screen after the action: taken once the person paused for
``quiet_s``, or just before their next input reaches the phone, whichever comes first. Text typed
in a burst (several ``text`` messages with nothing else between) is one ``Type`` step. Text typed
into a password field — the focused node's ``password`` flag in the view tree, read before the
burst's first text, and any field when the tree cannot be read — is never stored: the step says
``•••`` and the number of characters. A screenshot of a secure window (black) is kept as it is, and
the step's note says the screen was protected.

One recorder per task in the API process, shared by its viewers (``LiveHub.user_steps``); the
hand-back route flushes it first (``LiveHub.flush_user_steps``), so the steps a person made are
all recorded before the agent is told about them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from device_pool.driver import AdbDevice, is_secure_frame
from device_pool.driver.ui_tree import focused_is_password
from device_pool.grid import GRID_SIZE
from orchestrator.db import Event, utcnow
from orchestrator.db.database import Database
from orchestrator.db.steps import USER, insert_step
from orchestrator.encryption import Cipher
from orchestrator.live.input_channel import DoubleTap, Key, LongPress, Message, Ping, Swipe, Tap, Text
from orchestrator.notifier import EventSignal

__all__ = ["REDACTED", "UserSteps", "user_action"]

logger = logging.getLogger(__name__)

REDACTED = "•••"
_KEYS = {"back": "Back", "home": "Home"}  # the agent's own actions; other keys are named as such


def _grid(value: float) -> int:
    return min(GRID_SIZE - 1, max(0, int(value * GRID_SIZE)))


def _point(x: float, y: float) -> list[int]:
    return [_grid(x), _grid(y)]


def user_action(message: Message) -> tuple[dict[str, Any], str]:
    """The (action, action_text) of a control message, in the agent's action vocabulary.

    Text is not handled here: its step is built from the whole burst (``_Pending``)."""
    if isinstance(message, Tap | DoubleTap | LongPress):
        name = {Tap: "Tap", DoubleTap: "Double Tap", LongPress: "Long Press"}[type(message)]
        point = _point(message.x, message.y)
        return {"name": name, "element": point}, f'do(action="{name}", element={_compact(point)})'
    if isinstance(message, Swipe):
        start, end = _point(message.x1, message.y1), _point(message.x2, message.y2)
        return (
            {"name": "Swipe", "start": start, "end": end},
            f'do(action="Swipe", start={_compact(start)}, end={_compact(end)})',
        )
    if isinstance(message, Key):
        name = _KEYS.get(message.key)
        if name is not None:
            return {"name": name}, f'do(action="{name}")'
        return {"name": "Key", "key": message.key}, f'do(action="Key", key="{message.key}")'
    raise ValueError(f"no step for a {message.type} message")


def _compact(point: list[int]) -> str:
    return f"[{point[0]},{point[1]}]"


@dataclass
class _Pending:
    """A step whose screenshot is not taken yet."""

    action: dict[str, Any]
    action_text: str
    text: list[str] = field(default_factory=list)  # a Type burst's parts
    secret: bool = False  # a Type into a password field

    def finish(self) -> tuple[dict[str, Any], str, str | None]:
        if not self.text:
            return self.action, self.action_text, None
        typed = "".join(self.text)
        if self.secret:
            action = {"name": "Type", "text": REDACTED, "redacted": True, "length": len(typed)}
            note = f"typed {len(typed)} characters into a password field (not recorded)"
            return action, f'do(action="Type", text="{REDACTED}")', note
        # JSON quoting keeps a quote or newline the person typed from breaking the call.
        return (
            {"name": "Type", "text": typed},
            f'do(action="Type", text={json.dumps(typed, ensure_ascii=False)})',
            None,
        )


class UserSteps:
    """Records one task's person-made steps (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        task_id: uuid.UUID,
        tenant_id: uuid.UUID,
        phone: AdbDevice,
        *,
        quiet_s: float = 0.5,
        jpeg_quality: int = 80,
        notifier: EventSignal | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.cipher = cipher  # seals screenshots (storage.encryption_key)
        self.task_id = task_id
        self.tenant_id = tenant_id
        self.phone = phone
        self.quiet_s = quiet_s
        self.jpeg_quality = jpeg_quality
        self.notifier = notifier
        self._pending: _Pending | None = None
        self._lock = asyncio.Lock()  # one flush at a time: steps are written in the order made
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def before(self, message: Message) -> None:
        """Called before ``message`` goes to the phone: the pending step's screen is the one now,
        unless ``message`` continues a text burst."""
        if isinstance(message, Ping):
            return
        if isinstance(message, Text) and self._pending is not None and self._pending.text:
            if self._timer is not None:  # the burst goes on: its step waits for the whole of it
                self._timer.cancel()
                self._timer = None
            return
        await self.flush()
        if isinstance(message, Text):
            secret = True
            try:
                secret = focused_is_password(await self.phone.ui_dump())
            except Exception:  # unreadable tree: treat the text as secret rather than store it
                logger.warning("could not read the view tree; typed text recorded redacted", exc_info=True)
            self._pending = _Pending({"name": "Type"}, 'do(action="Type")', secret=secret)

    def after(self, message: Message) -> None:
        """Called once ``message`` reached the phone: it becomes (part of) the pending step."""
        if isinstance(message, Ping):
            return
        if isinstance(message, Text):
            if self._pending is None or self._pending.action["name"] != "Type":
                # before() was not called for it (a flush came between): secret, to be safe.
                self._pending = _Pending({"name": "Type"}, 'do(action="Type")', secret=True)
            self._pending.text.append(message.text)
        else:
            action, text = user_action(message)
            self._pending = _Pending(action, text)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.quiet_s, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self.flush())
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Record the pending step now (screenshot, row, event); nothing when none is pending."""
        async with self._lock:
            pending, self._pending = self._pending, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if pending is None or (pending.action["name"] == "Type" and not pending.text):
                return  # nothing pending, or text that never reached the phone
            try:
                await self._record(pending)
            except Exception:  # a lost step must not break the person's control of the phone
                logger.warning("could not record a person's step", exc_info=True,
                               extra={"task_id": str(self.task_id)})  # fmt: skip

    async def close(self) -> None:
        await self.flush()
        for task in list(self._flushing):
            with contextlib.suppress(Exception):
                await task

    async def _record(self, pending: _Pending) -> None:
        action, action_text, note = pending.finish()
        jpeg, current_app = None, None
        try:
            image = await self.phone.screenshot("raw")
            if is_secure_frame(image):
                protected = "the screen was protected (a secure window): its screenshot is black"
                note = f"{note}; {protected}" if note else protected
            jpeg = await asyncio.to_thread(self._jpeg, image)
            package, _activity = await self.phone.foreground()
            current_app = self.phone.apps.label(package)
        except Exception:
            logger.warning(
                "no screenshot for a person's step", exc_info=True, extra={"task_id": str(self.task_id)}
            )
        row = {"actor": USER, "current_app": current_app, "action_text": action_text, "action": action,
               "result": "ok", "note": note, "timings": {}}  # fmt: skip
        async with self.db.transaction(write=True) as db_session:
            index = await insert_step(
                db_session, self.task_id, row, jpeg=jpeg, data_dir=self.data_dir, cipher=self.cipher
            )
            payload = {"index": index, "action_text": action_text, "result": "ok",
                       "current_app": current_app, "actor": USER}  # fmt: skip
            await db_session.execute(
                insert(Event).values(
                    tenant_id=self.tenant_id,
                    task_id=self.task_id,
                    type="task.step",
                    payload=payload,
                    created_at=utcnow(),
                )
            )
        if self.notifier is not None:
            self.notifier.notify()
        logger.info("person's step recorded", extra={"task_id": str(self.task_id), "step": index})

    def _jpeg(self, image: Any) -> bytes:
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=self.jpeg_quality)
        return out.getvalue()
