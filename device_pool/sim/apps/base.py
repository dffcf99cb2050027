"""What every app shares: its screen stack, the build context, and the host (phone) it runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from device_pool.sim.views import Color, View

if TYPE_CHECKING:
    from device_pool.sim.state import PhoneState


class Host(Protocol):
    """The phone as apps see it; every call happens with the phone's lock held."""

    state: PhoneState
    props: dict[str, str]

    @property
    def seed(self) -> int: ...
    def now_ms(self) -> int: ...
    def start_activity(self, component: str | None = None, *, package: str | None = None,
                       action: str | None = None, data: str | None = None) -> str: ...  # fmt: skip
    def go_home(self) -> None: ...
    def finish_app(self, package: str) -> None: ...
    def launchable_apps(self) -> list[App]: ...


@dataclass
class Screen:
    """One activity instance: which page, its arguments, its text fields, focus and scroll rows."""

    name: str
    activity: str
    args: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    focus: str = ""
    scroll: dict[str, int] = field(default_factory=dict)


@dataclass
class Ctx:
    """Everything a screen builder needs: sizes in px, the language, the app and its screen."""

    host: Host
    app: App
    screen: Screen
    width: int
    height: int
    unit: float  # px per dp
    top: int  # first row below the status bar
    zh: bool

    def dp(self, value: float) -> int:
        return round(value * self.unit)

    def t(self, en: str, zh: str) -> str:
        return zh if self.zh else en


class App:
    """An app: a package with activities, each showing one kind of screen; subclasses add pages.

    ``activities`` maps the fully qualified activity class to the screen name that
    ``build_<name>(ctx)`` draws. The first entry is the launcher activity unless ``launcher`` is "".
    """

    package: str = ""
    label_en: str = ""
    label_zh: str = ""
    icon_letter: str = "?"
    icon_color: Color = (90, 90, 90)
    activities: dict[str, str] = {}  # noqa: RUF012 - per-class constant tables
    launcher: str | None = None  # fully qualified launcher activity; None: the first activity
    status_bg: Color | None = (255, 255, 255)  # None: transparent (what is behind shows)
    status_fg: Color = (32, 33, 36)

    def __init__(self, host: Host) -> None:
        self.host = host
        self.stack: list[Screen] = []

    # ---- identity
    def label(self, zh: bool) -> str:
        return self.label_zh if zh else self.label_en

    def launcher_class(self) -> str | None:
        if self.launcher == "":
            return None
        return self.launcher or next(iter(self.activities), None)

    def short(self, activity: str) -> str:
        return activity[len(self.package) :] if activity.startswith(self.package + ".") else activity

    # ---- lifecycle
    def create_screen(self, activity: str, data: str | None) -> Screen:
        """The screen an intent for ``activity`` (with optional data URI) opens."""
        return Screen(name=self.activities[activity], activity=activity)

    def on_cold_start(self) -> None:
        """Called when the app starts with no task (after a force-stop or on first launch)."""

    def reset(self) -> None:
        self.stack = []

    @property
    def top(self) -> Screen | None:
        return self.stack[-1] if self.stack else None

    def push(self, name: str, activity: str | None = None, **args: Any) -> Screen:
        screen = Screen(name=name, activity=activity or (self.top.activity if self.top else ""), args=args)
        self.stack.append(screen)
        return screen

    def back(self) -> bool:
        """Pop one screen; False at the root (the phone then finishes the app and goes home)."""
        if len(self.stack) > 1:
            self.stack.pop()
            return True
        return False

    # ---- drawing and input hooks
    def build(self, ctx: Ctx) -> View:
        return getattr(self, f"build_{ctx.screen.name}")(ctx)

    def is_secure(self, screen: Screen) -> bool:
        return False

    def submit(self, screen: Screen, key: str) -> None:
        """ENTER in the focused field ``key``; by default moves on to the next field."""

    # ---- private data (/data/data/<package>/files/state.json)
    def data(self) -> dict[str, Any]:
        return self.host.state.app_data(self.package)

    def save_data(self, data: dict[str, Any]) -> None:
        self.host.state.save_app_data(self.package, data)


__all__ = ["App", "Ctx", "Host", "Screen"]
