"""The steps a plan is made of. Each sub-goal answers two questions about the current screen:
``done`` — is its outcome visible (or, for typing, already in the history)? — and ``next`` — what
one action moves it forward from here (None: nothing on this screen to act on)?

The history is the actions the model already sent in this conversation, so the server stays
stateless: everything it knows comes with the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from device_pool.driver.apps import AppCatalog
from worker.agent.actions import ActionModel, Launch, TakeOver, Tap, TypeName, TypeText, Wait
from worker.reference_model.ocr import normalise
from worker.reference_model.screen import Phrase, Screen

_CATALOG = AppCatalog()


@dataclass(frozen=True)
class Decision:
    """One reply: a line of reasoning, the action, and the rule that chose it (for logs)."""

    thinking: str
    action: ActionModel
    rule: str


@dataclass(frozen=True)
class History:
    """The actions of the earlier assistant turns, oldest first."""

    actions: tuple[ActionModel, ...] = ()

    @property
    def last(self) -> ActionModel | None:
        return self.actions[-1] if self.actions else None

    def typed(self, text: str) -> bool:
        wanted = normalise(text)
        return any(isinstance(a, TypeText | TypeName) and normalise(a.text) == wanted for a in self.actions)

    def has(self, kind: type[ActionModel]) -> bool:
        return any(isinstance(a, kind) for a in self.actions)

    def trailing(self, *kinds: type[ActionModel]) -> int:
        """How many of the latest actions in a row are of these kinds."""
        count = 0
        for action in reversed(self.actions):
            if not isinstance(action, kinds):
                break
            count += 1
        return count

    def repeats(self, action: ActionModel) -> int:
        """How many of the latest actions in a row equal ``action``."""
        count = 0
        for earlier in reversed(self.actions):
            if earlier != action:
                break
            count += 1
        return count


ScreenCheck = Callable[[Screen], bool]


def launcher_visible(screen: Screen) -> bool:
    """The home screen: several lines that are app names."""
    return sum(1 for b in screen.content if _CATALOG.resolve(b.text) is not None) >= 3


@dataclass(frozen=True)
class OpenApp:
    """The app is in front; Launch it by the name the task used."""

    app: str
    package: str

    def done(self, screen: Screen, history: History) -> bool:
        if screen.current_app:
            front = _CATALOG.resolve(screen.current_app)
            return front == self.package or normalise(screen.current_app) == normalise(self.app)
        # No screen info: trust the picture, which is the launcher until the app opened.
        return not launcher_visible(screen) and history.has(Launch)

    def next(self, screen: Screen, history: History) -> Decision:
        return Decision(f"{self.app} is not open yet, so I start it.", Launch(app=self.app), "open_app")


@dataclass(frozen=True)
class TapText:
    """Tap the line showing ``target``; done once ``reached`` holds (the screen it leads to)."""

    target: tuple[Phrase, ...]
    reached: ScreenCheck
    why: str
    message: Callable[[str], str] | None = None  # a sensitive tap: the text a person must confirm

    def done(self, screen: Screen, history: History) -> bool:
        return self.reached(screen)

    def next(self, screen: Screen, history: History) -> Decision | None:
        box = screen.find(*self.target)
        if box is None:
            return None
        message = self.message(box.text) if self.message else None
        shown = self.target[0] if isinstance(self.target[0], str) else box.text
        thinking = f'I tap "{shown}" {self.why}.'
        if message:
            thinking += " This is a sensitive step, so a person should confirm it."
        return Decision(thinking, Tap(element=screen.to_grid(*box.centre), message=message), "tap_text")


@dataclass(frozen=True)
class Fill:
    """Type ``text`` into the field shown by ``hint``: tap the field, then Type once it has focus.

    Done when ``form`` is on screen and the text shows there or was already typed. A field counts as
    focused when the previous action tapped inside it: taps do not move fields.
    """

    hint: tuple[Phrase, ...]
    text: str
    form: tuple[Phrase, ...]
    label: str

    def done(self, screen: Screen, history: History) -> bool:
        on_form = screen.has(*self.form)
        return on_form and (screen.has_exact(self.text) or history.typed(self.text))

    def next(self, screen: Screen, history: History) -> Decision | None:
        field_box = screen.find(*self.hint)
        if field_box is None:
            return None
        last = history.last
        if isinstance(last, Tap) and field_box.contains(*screen.from_grid(last.element), field_box.height):
            return Decision(
                f'The {self.label} field has focus; I type "{self.text}".', TypeText(text=self.text), "type"
            )
        return Decision(
            f"I tap the {self.label} field so I can type into it.",
            Tap(element=screen.to_grid(*field_box.centre)),
            "focus_field",
        )


@dataclass(frozen=True)
class SubmitSearch:
    """Press the search button right of the search field; done when a results line shows."""

    query: str
    hint: tuple[Phrase, ...]
    results: tuple[Phrase, ...]

    def done(self, screen: Screen, history: History) -> bool:
        return screen.has(*self.results)

    def next(self, screen: Screen, history: History) -> Decision | None:
        box = screen.find(self.query) if screen.has_exact(self.query) else screen.find(*self.hint)
        if box is None:
            return None
        point = screen.button_right_of(box) or (screen.width * 0.93, box.centre[1])
        return Decision(
            f'"{self.query}" is in the search field; I press the search button.',
            Tap(element=screen.to_grid(*point)),
            "submit_search",
        )


@dataclass(frozen=True)
class SetSwitch:
    """The switch in the row labelled ``labels`` is on (or off), read from its pixels."""

    labels: tuple[Phrase, ...]
    on: bool
    name: str

    def state(self, screen: Screen) -> tuple[bool, tuple[float, float]] | None:
        for box in screen.find_all(*self.labels):
            found = screen.switch_near(box)
            if found is not None:
                return found
        return None

    def done(self, screen: Screen, history: History) -> bool:
        found = self.state(screen)
        return found is not None and found[0] == self.on

    def next(self, screen: Screen, history: History) -> Decision | None:
        found = self.state(screen)
        if found is None:
            return None
        is_on, point = found
        want = "on" if self.on else "off"
        return Decision(
            f"{self.name} is {'on' if is_on else 'off'} and should be {want}; I tap its switch.",
            Tap(element=screen.to_grid(*point)),
            "toggle",
        )


@dataclass(frozen=True)
class HumanLogin:
    """A person logs in (credentials are theirs); done when the logged-in screen shows."""

    app: str
    logged_in: tuple[Phrase, ...]
    login_words: tuple[Phrase, ...] = field(default=("Log in", "Sign in", "Password", "登录", "密码"))

    def done(self, screen: Screen, history: History) -> bool:
        return screen.has(*self.logged_in)

    def next(self, screen: Screen, history: History) -> Decision | None:
        if screen.has(*self.login_words) or screen.is_black():
            return Decision(
                f"{self.app} asks for a login, and the credentials belong to the user.",
                TakeOver(message=f"Please log in to {self.app}, then hand the phone back."),
                "login",
            )
        if history.trailing(Wait) < 2:
            return Decision(f"{self.app} is still loading; I wait.", Wait(duration="1 second"), "wait_login")
        return None


SubGoal = OpenApp | TapText | Fill | SubmitSearch | SetSwitch | HumanLogin

__all__ = [
    "Decision",
    "Fill",
    "History",
    "HumanLogin",
    "OpenApp",
    "ScreenCheck",
    "SetSwitch",
    "SubGoal",
    "SubmitSearch",
    "TapText",
    "launcher_visible",
]
