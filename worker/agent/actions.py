"""Typed actions of the AutoGLM phone grammar: one pydantic model per action name.

The model writes ``do(action="Tap", element=[x, y])`` or ``finish(message="…")``; the parser turns that
into one of the models below and ``ACTIONS`` maps each grammar name to its model. Points are on a
0–999 grid over the screenshot, (0, 0) at the top-left, whatever the phone's resolution.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

GRID_MAX = 999
"""The largest coordinate on the model's grid; the screenshot spans 0..GRID_MAX on both axes."""

Coord = Annotated[int, Field(ge=0, le=GRID_MAX)]
Point = tuple[Coord, Coord]


class ActionModel(BaseModel):
    """Common configuration: immutable, and no argument the grammar does not define."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usage: ClassVar[str]
    """The call as the prompt shows it, placeholders in place of values."""


class Launch(ActionModel):
    name: Literal["Launch"] = "Launch"
    app: str = Field(min_length=1)
    usage: ClassVar[str] = 'do(action="Launch", app="xxx")'


class Tap(ActionModel):
    """A tap; a ``message`` marks it sensitive (payment, sending, privacy) and asks for confirmation."""

    name: Literal["Tap"] = "Tap"
    element: Point
    message: str | None = None
    usage: ClassVar[str] = 'do(action="Tap", element=[x,y])'


class TypeText(ActionModel):
    name: Literal["Type"] = "Type"
    text: str
    usage: ClassVar[str] = 'do(action="Type", text="xxx")'


class TypeName(ActionModel):
    """Typing a person's name; handled as Type, told apart so the model can say what it types."""

    name: Literal["Type_Name"] = "Type_Name"
    text: str
    usage: ClassVar[str] = 'do(action="Type_Name", text="xxx")'


class Swipe(ActionModel):
    name: Literal["Swipe"] = "Swipe"
    start: Point
    end: Point
    usage: ClassVar[str] = 'do(action="Swipe", start=[x1,y1], end=[x2,y2])'


class LongPress(ActionModel):
    name: Literal["Long Press"] = "Long Press"
    element: Point
    usage: ClassVar[str] = 'do(action="Long Press", element=[x,y])'


class DoubleTap(ActionModel):
    name: Literal["Double Tap"] = "Double Tap"
    element: Point
    usage: ClassVar[str] = 'do(action="Double Tap", element=[x,y])'


class Back(ActionModel):
    name: Literal["Back"] = "Back"
    usage: ClassVar[str] = 'do(action="Back")'


class Home(ActionModel):
    name: Literal["Home"] = "Home"
    usage: ClassVar[str] = 'do(action="Home")'


_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>.*?)\s*$")
_UNIT_SECONDS: dict[str, float] = {
    **dict.fromkeys(["", "s", "sec", "secs", "second", "seconds", "秒", "秒钟"], 1.0),
    **dict.fromkeys(["ms", "msec", "millisecond", "milliseconds", "毫秒"], 0.001),
    **dict.fromkeys(["m", "min", "mins", "minute", "minutes", "分", "分钟"], 60.0),
}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "2", "2s", "2 seconds", "1.5 秒" or "500 ms"; ValueError if unreadable."""
    match = _DURATION.match(text)
    unit = match.group("unit").lower() if match else ""
    if match is None or unit not in _UNIT_SECONDS:
        raise ValueError(f'duration {text!r} is not a number of seconds such as "2 seconds"')
    return float(match.group("num")) * _UNIT_SECONDS[unit]


class Wait(ActionModel):
    name: Literal["Wait"] = "Wait"
    duration: str
    usage: ClassVar[str] = 'do(action="Wait", duration="x seconds")'

    @field_validator("duration", mode="before")
    @classmethod
    def _number_means_seconds(cls, value: Any) -> Any:
        # Models sometimes write duration=2; keep the grammar's string form so formatting round-trips.
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return f"{value} seconds"
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("duration must be a finite number of seconds")
            return f"{value:g} seconds"
        return value

    @field_validator("duration")
    @classmethod
    def _readable(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def seconds(self) -> float:
        """The duration in seconds."""
        return parse_duration(self.duration)


class TakeOver(ActionModel):
    """The user must act (login, captcha, verification); the task waits for them."""

    name: Literal["Take_over"] = "Take_over"
    message: str
    usage: ClassVar[str] = 'do(action="Take_over", message="xxx")'


class Interact(ActionModel):
    """Several options fit the task and the model asks the user which one to take."""

    name: Literal["Interact"] = "Interact"
    message: str | None = None
    usage: ClassVar[str] = 'do(action="Interact")'


class Note(ActionModel):
    """Remember what the current screen shows, for a later summary."""

    name: Literal["Note"] = "Note"
    message: str
    usage: ClassVar[str] = 'do(action="Note", message="True")'


class CallApi(ActionModel):
    """Summarise or comment on the current screen or on what was noted."""

    name: Literal["Call_API"] = "Call_API"
    instruction: str
    usage: ClassVar[str] = 'do(action="Call_API", instruction="xxx")'


class Finish(ActionModel):
    """The task is over; ``message`` says what was done or why it could not be."""

    name: Literal["finish"] = "finish"
    message: str
    usage: ClassVar[str] = 'finish(message="xxx")'


Action = Annotated[
    Launch
    | Tap
    | TypeText
    | TypeName
    | Swipe
    | LongPress
    | DoubleTap
    | Back
    | Home
    | Wait
    | TakeOver
    | Interact
    | Note
    | CallApi
    | Finish,
    Field(discriminator="name"),
]

ACTIONS: dict[str, type[ActionModel]] = {
    cls.model_fields["name"].default: cls
    for cls in (
        Launch,
        Tap,
        TypeText,
        TypeName,
        Swipe,
        LongPress,
        DoubleTap,
        Back,
        Home,
        Wait,
        TakeOver,
        Interact,
        Note,
        CallApi,
        Finish,
    )
}
"""Grammar name → model, in the order the prompts list them. ``finish`` is the one non-``do`` call."""

FINISH = "finish"


def is_terminal(action: ActionModel) -> bool:
    """Whether the action ends the task."""
    return isinstance(action, Finish)


def is_sensitive(action: ActionModel) -> bool:
    """Whether the action is a tap the model marked sensitive, so a user must confirm it first."""
    return isinstance(action, Tap) and action.message is not None


__all__ = [
    "ACTIONS",
    "FINISH",
    "GRID_MAX",
    "Action",
    "ActionModel",
    "Back",
    "CallApi",
    "DoubleTap",
    "Finish",
    "Home",
    "Interact",
    "Launch",
    "LongPress",
    "Note",
    "Point",
    "Swipe",
    "TakeOver",
    "Tap",
    "TypeName",
    "TypeText",
    "Wait",
    "is_sensitive",
    "is_terminal",
    "parse_duration",
]
