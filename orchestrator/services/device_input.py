"""What a device call may send to a session's phone (``POST /api/v1/sessions/{id}/input``): one typed union.

Points are the phone's screen pixels (``GET …/ui`` gives every element's bounds in pixels, and
``…/screenshot`` says the screen's size in ``X-Screen-Width``/``X-Screen-Height``); a tap may name
an element of the UI tree by its id instead. A swipe goes from point to point, or in a direction
across the middle of the screen.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from device_pool.driver import KEYCODES

__all__ = ["INPUT", "DeviceInput", "KeyInput", "LaunchSpec", "SwipeInput", "TapInput", "TextInput"]

Pixel = Annotated[int, Field(ge=0, le=100_000, description="Screen pixels from the left or top edge.")]
ElementId = Annotated[
    str, Field(pattern=r"^e[0-9a-f]{6}(-\d{1,4})?$", description="An element `id` from `GET …/ui`.")
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Pointed(_Input):
    """A point: ``x`` and ``y``, or ``element_id`` (its centre, as the phone shows it now)."""

    x: Pixel | None = None
    y: Pixel | None = None
    element_id: ElementId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> _Pointed:
        has_point = self.x is not None or self.y is not None
        if self.element_id is not None and has_point:
            raise ValueError("give either element_id or x and y, not both")
        if self.element_id is None and (self.x is None or self.y is None):
            raise ValueError("give x and y (screen pixels), or element_id")
        return self


class TapInput(_Pointed):
    type: Literal["tap"]


class DoubleTapInput(_Pointed):
    type: Literal["double_tap"]


class LongPressInput(_Pointed):
    type: Literal["long_press"]
    duration_ms: int = Field(default=800, ge=100, le=10_000)


class SwipeInput(_Input):
    """From (x1, y1) to (x2, y2), or ``direction``: the way the finger moves, across the middle of the
    screen (``up`` moves from 70 % to 30 % of the height: the content scrolls to show what is below)."""

    type: Literal["swipe"]
    x1: Pixel | None = None
    y1: Pixel | None = None
    x2: Pixel | None = None
    y2: Pixel | None = None
    direction: Literal["up", "down", "left", "right"] | None = None
    duration_ms: int = Field(default=300, ge=20, le=10_000)

    @model_validator(mode="after")
    def _path(self) -> SwipeInput:
        points = [self.x1, self.y1, self.x2, self.y2]
        if self.direction is not None and any(p is not None for p in points):
            raise ValueError("give either direction or x1, y1, x2, y2, not both")
        if self.direction is None and any(p is None for p in points):
            raise ValueError("give x1, y1, x2 and y2 (screen pixels), or direction")
        return self


class TextInput(_Input):
    """Typed into the field that has focus (tap it first); ``clear`` empties it before."""

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=2000)
    clear: bool = False

    @field_validator("text")
    @classmethod
    def _typable(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError: 422
        return value


class KeyInput(_Input):
    type: Literal["key"]
    key: str = Field(min_length=1, max_length=40, description="back, home, recents, enter, delete, tab, …")

    @field_validator("key")
    @classmethod
    def _known(cls, value: str) -> str:
        name = value.strip().lower().removeprefix("keycode_")
        if name not in KEYCODES:
            raise ValueError(f"unknown key {value!r}; known keys: {', '.join(sorted(KEYCODES))}")
        return name


DeviceInput = Annotated[
    TapInput | DoubleTapInput | LongPressInput | SwipeInput | TextInput | KeyInput, Field(discriminator="type")
]
INPUT: TypeAdapter[DeviceInput] = TypeAdapter(DeviceInput)


class LaunchSpec(_Input):
    """``POST …/launch``: an app by name (Settings, 设置 …), package, or ``package/activity``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"app": "Settings"}]})
    app: str = Field(min_length=1, max_length=200)
