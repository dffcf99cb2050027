"""The ``control`` data channel: a viewer's taps, swipes, text and keys, each answered with an ack.

Messages are JSON objects with a ``type`` and an optional ``id`` (a string or integer the ack
echoes). Points are normalised to the video frame (0–1, left/top to right/bottom); the stream's
``VideoGeometry`` turns them into the phone's pixels.

    {"type": "tap", "id": 1, "x": 0.5, "y": 0.25}
    {"type": "double_tap", "x": 0.5, "y": 0.25}
    {"type": "long_press", "x": 0.5, "y": 0.25, "duration_ms": 800}
    {"type": "swipe", "x1": 0.5, "y1": 0.8, "x2": 0.5, "y2": 0.2, "duration_ms": 300}
    {"type": "text", "text": "hello"}                  typed into the focused field, added to it
    {"type": "key", "key": "back"}                      back, home, recents, enter, delete
    {"type": "ping"}                                    keeps an otherwise idle viewer open
    {"type": "screen"}                                  is the screen protected? (screen.py)

    → {"type": "ack", "id": 1, "ok": true, "error": null, "message": null}
    → {"type": "ack", "id": 2, "ok": false, "error": "not_in_control", "message": "view only: …"}
    → {"type": "ack", "id": 3, "ok": true, …, "screen": {"protected": true, "elements": [{"bounds": [l, t, r, b],
       "label": "Password", "kind": "EditText", "clickable": true, "editable": true, "password": true, …}]}}

Every message is acked in the order it came (they run one at a time, so a swipe after a tap
happens after it). Input is checked against who holds control *now* (``access.py``) and only then
sent to the phone through the driver; a refused one never reaches the phone. On a task's phone
while a person holds it, input that reached the phone is recorded as the task's steps
(``user_steps.py``). Error codes:
``invalid_message`` (not JSON, unknown type, bad field), ``not_in_control``, ``busy`` (more than
``MAX_PENDING`` messages waiting), and the driver's codes (``device_offline``, ``command_failed``, …).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from device_pool.driver import AdbDevice
from device_pool.errors import DeviceError
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.screen import describe_screen

__all__ = ["MAX_MESSAGE_BYTES", "MAX_PENDING", "InputChannel", "InputRecorder", "parse_message"]

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024
MAX_PENDING = 64

Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(max_length=64)] | int | None = None


class Tap(_Message):
    type: Literal["tap"]
    x: Unit
    y: Unit


class DoubleTap(_Message):
    type: Literal["double_tap"]
    x: Unit
    y: Unit


class LongPress(_Message):
    type: Literal["long_press"]
    x: Unit
    y: Unit
    duration_ms: int = Field(default=800, ge=100, le=10_000)


class Swipe(_Message):
    type: Literal["swipe"]
    x1: Unit
    y1: Unit
    x2: Unit
    y2: Unit
    duration_ms: int = Field(default=300, ge=20, le=10_000)


class Text(_Message):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=2000)

    @field_validator("text")
    @classmethod
    def _typable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, a ValueError
        return value


class Key(_Message):
    type: Literal["key"]
    key: Literal["back", "home", "recents", "enter", "delete"]


class Ping(_Message):
    type: Literal["ping"]


class Screen(_Message):
    type: Literal["screen"]


Message = Annotated[
    Tap | DoubleTap | LongPress | Swipe | Text | Key | Ping | Screen, Field(discriminator="type")
]
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


class BadMessage(ValueError):
    def __init__(self, message: str, message_id: object = None) -> None:
        super().__init__(message)
        self.message_id = message_id


def parse_message(raw: str | bytes) -> Message:
    """One message from the channel; raises ``BadMessage`` (with the id when one could be read)."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from None
    message_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(message_id, str | int) or isinstance(message_id, bool):
        message_id = None
    try:
        return _MESSAGE.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BadMessage(f"{where}: {first['msg']}" if where else first["msg"], message_id) from None


def ack(message_id: object, error: str | None = None, message: str | None = None) -> dict[str, Any]:
    return {"type": "ack", "id": message_id, "ok": error is None, "error": error, "message": message}


MayControl = Callable[[], Awaitable[tuple[bool, str]]]


class InputRecorder(Protocol):
    """Told of each input allowed through: before it goes to the phone and once it got there
    (``orchestrator/live/user_steps.py`` records a person's steps of a task)."""

    async def before(self, message: Message) -> None: ...
    def after(self, message: Message) -> None: ...


class InputChannel:
    """One viewer's ``control`` channel: a queue and one task that handles its messages in order."""

    def __init__(
        self,
        channel: Any,  # aiortc RTCDataChannel
        phone: AdbDevice,
        geometry: VideoGeometry,
        may_control: MayControl,
        on_activity: Callable[[], None],
        recorder: Callable[[], InputRecorder | None] = lambda: None,
    ) -> None:
        self.channel = channel
        self.recorder = recorder  # who records this input now (read after may_control), if anyone
        self.phone = phone
        self.geometry = geometry
        self.may_control = may_control
        self.on_activity = on_activity
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="live-control")
        channel.on("message", self._received)

    def _received(self, raw: str | bytes) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            self.send(ack(None, "busy", f"more than {MAX_PENDING} messages waiting; slow down"))
            return
        self._queue.put_nowait(raw)

    def send(self, payload: dict[str, Any]) -> None:
        if self.channel.readyState == "open":
            self.channel.send(json.dumps(payload))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            raw = await self._queue.get()
            self.on_activity()
            self.send(await self.handle(raw))

    async def handle(self, raw: str | bytes) -> dict[str, Any]:
        try:
            message = parse_message(raw)
        except BadMessage as exc:
            return ack(exc.message_id, "invalid_message", str(exc))
        if isinstance(message, Ping):
            return ack(message.id)
        if isinstance(message, Screen):  # a question about the screen, not input: watchers may ask
            try:
                return {**ack(message.id), "screen": await describe_screen(self.phone)}
            except DeviceError as exc:
                return ack(message.id, exc.code, str(exc))
        allowed, why = await self.may_control()
        if not allowed:
            return ack(message.id, "not_in_control", why)
        recorder = self.recorder()
        if recorder is not None:
            await recorder.before(message)
        try:
            await self._perform(message)
        except DeviceError as exc:
            return ack(message.id, exc.code, str(exc))
        except ValueError as exc:  # the driver refuses an argument before sending anything
            return ack(message.id, "invalid_message", str(exc))
        if recorder is not None:
            recorder.after(message)
        return ack(message.id)

    async def _perform(self, message: Message) -> None:
        phone, to_screen = self.phone, self.geometry.to_screen
        if isinstance(message, Tap):
            await phone.tap(*to_screen(message.x, message.y))
        elif isinstance(message, DoubleTap):
            await phone.double_tap(*to_screen(message.x, message.y))
        elif isinstance(message, LongPress):
            await phone.long_press(*to_screen(message.x, message.y), duration_ms=message.duration_ms)
        elif isinstance(message, Swipe):
            x1, y1 = to_screen(message.x1, message.y1)
            x2, y2 = to_screen(message.x2, message.y2)
            await phone.swipe(x1, y1, x2, y2, duration_ms=message.duration_ms)
        elif isinstance(message, Text):
            await phone.type_text(message.text, clear=False)
        elif isinstance(message, Key):
            await phone.key(message.key)
