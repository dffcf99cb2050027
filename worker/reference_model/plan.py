"""The parts the reference model's plan is made of (not a task's subgoals). Each part answers two questions about the current screen:
``done`` — is its outcome visible (or, for typing, already in the history)? — and ``next`` — what
one action moves it forward from here (None: nothing on this screen to act on)?

The history is the actions the model already sent in this conversation, so the server stays
stateless: everything it knows comes with the request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from device_pool.driver.apps import AppCatalog
from worker.agent.actions import ActionModel, Home, Launch, TakeOver, Tap, TypeName, TypeText, Wait
from worker.agent.ocr import normalise
from worker.reference_model.screen import Phrase, Screen

_CATALOG = AppCatalog()


@dataclass(frozen=True)
class Decision:
    """One reply: a line of reasoning, the action, and the rule that chose it (for logs)."""

    thinking: str
    action: ActionModel
    rule: str
    # Another way to the same end, for when ``action`` was just done and changed nothing.
    alternative: ActionModel | None = None


@dataclass(frozen=True)
class History:
    """The actions of the earlier assistant turns, oldest first."""

    actions: tuple[ActionModel, ...] = ()
    # For each earlier action, whether the screen after it looked the same as before it (None: unknown).
    unchanged: tuple[bool | None, ...] = ()

    @property
    def last(self) -> ActionModel | None:
        return self.actions[-1] if self.actions else None

    def trailing_unchanged(self) -> int:
        """How many of the latest actions in a row left the screen as it was."""
        count = 0
        for same in reversed(self.unchanged):
            if not same:
                break
            count += 1
        return count

    def typed(self, text: str) -> bool:
        wanted = normalise(text)
        return any(isinstance(a, TypeText | TypeName) and normalise(a.text) == wanted for a in self.actions)

    def has(self, *kinds: type[ActionModel]) -> bool:
        return any(isinstance(a, kinds) for a in self.actions)

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


LAUNCHER = "com.android.launcher3"
# Lines only one app's screens show (exact, after normalising), to tell the app in front from the
# picture when the client's name for it is unknown or wrong ("AndroidSystemSettings", "System Home").
_CART = re.compile(r"^(?:cart|购物车)\(\d+\)$")
APP_MARKS: dict[str, tuple[Phrase, ...]] = {
    "com.android.settings": ("Airplane mode", "飞行模式", "Use Wi-Fi", "使用 WLAN", "Use Bluetooth", "使用蓝牙",
                             "About phone", "关于手机", "Paired devices", "已配对的设备", "Android version"),
    "com.android.contacts": ("Create contact", "新建联系人", "No contacts", "没有联系人", "通讯录"),
    "com.android.messaging": ("Start chat", "发起聊天", "New conversation", "新对话", "No conversations",
                              "没有对话", "Type name or phone number", "输入姓名或电话号码", "Text message"),
    "com.phonefleet.notes": ("New note", "新建笔记", "Edit note", "编辑笔记", "No notes yet", "还没有笔记"),
    "com.phonefleet.shop": ("Search products", "搜索商品", _CART, "Add to cart", "加入购物车", "Recommended for you",
                            "为你推荐", "Shop now", "立即抢购", "Checkout", "去结算"),
    "com.phonefleet.bank": ("My Bank", "我的银行", "Sign in to your account", "登录您的账户", "Recent transactions"),
}  # fmt: skip


def screen_app(screen: Screen) -> str | None:
    """The package whose screen this looks like (the launcher included), or None when it says nothing."""
    if launcher_visible(screen):
        return LAUNCHER
    scores = {pkg: sum(1 for m in marks if screen.has_exact(m)) for pkg, marks in APP_MARKS.items()}
    best = max(scores, key=lambda pkg: scores[pkg])
    return best if scores[best] > 0 else None


def front_package(label: str | None) -> str | None:
    """The package the client names as in front: a catalog name or package, or a name that contains
    one (Open-AutoGLM says "AndroidSystemSettings"); None for a name that tells nothing ("System Home")."""
    if not label or not label.strip():
        return None
    found = _CATALOG.resolve(label)
    if found is not None:
        return found
    flat = re.sub(r"[\s_\-·]+", "", label).casefold()
    hits = [(len(name), pkg) for name, pkg in _CATALOG.names().items() if len(name) >= 4 and name in flat]
    return max(hits)[1] if hits else None


def app_names(package: str) -> list[str]:
    """Every name the catalog knows for ``package`` (how its launcher icon may be labelled)."""
    return [name for name, pkg in _CATALOG.names().items() if pkg == package]


@dataclass(frozen=True)
class OpenApp:
    """The app is in front; Launch it by the name the task used.

    What is in front is read from the screen first (its lines that only one app shows), then from the
    client's name for it, read generously; neither: the app counts as open once a Launch was sent and
    the launcher is gone. A Launch that left the launcher on screen (a client that drops Launches of
    names it does not know) is followed by a tap on the app's icon.
    """

    app: str
    package: str

    def done(self, screen: Screen, history: History) -> bool:
        seen = screen_app(screen)
        if seen is not None:
            return seen == self.package
        front = front_package(screen.current_app)
        if front is not None and front != LAUNCHER:
            return front == self.package
        return not launcher_visible(screen) and history.has(Launch, Tap)

    def next(self, screen: Screen, history: History) -> Decision:
        tried = history.trailing(Launch, Home)
        if tried and launcher_visible(screen):
            icon = screen.find(*app_names(self.package), self.app)
            if icon is not None:
                return Decision(
                    f"Launching {self.app} did not open it; I tap its icon on the home screen.",
                    Tap(element=screen.to_grid(*icon.centre)),
                    "tap_icon",
                )
        if tried >= 2 and not isinstance(history.last, Home):
            return Decision(
                f"Launching {self.app} did not bring it to the front; I go to the home screen to find its icon.",
                Home(),
                "home",
            )
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
        left = (box.x0 + min(box.height, (box.x1 - box.x0) / 4), box.centre[1])
        return Decision(
            thinking,
            Tap(element=screen.to_grid(*box.centre), message=message),
            "tap_text",
            alternative=Tap(element=screen.to_grid(*left), message=message),
        )


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
            alternative=TypeText(text=self.text),
        )


@dataclass(frozen=True)
class PickContact:
    """Tap the contact that the recipient typed by name brings up ("Bob" → the row "Bob Smith"):
    Messages suggests matching contacts under the field, and a name alone is no address.

    The topmost line that matches is the field itself when another matches below it. No suggestion
    → ask a person who is meant, rather than sending to a name.
    """

    name: str
    reached: ScreenCheck

    def done(self, screen: Screen, history: History) -> bool:
        return self.reached(screen)

    def next(self, screen: Screen, history: History) -> Decision | None:
        wanted = normalise(self.name)

        def names_it(text: str, norm: str) -> bool:  # from the start of any of its words
            words = text.split()
            return bool(wanted) and any(
                normalise(" ".join(words[i:])).startswith(wanted) for i in range(len(words))
            )

        lines = sorted((b for b in screen.content if names_it(b.text, b.norm)), key=lambda b: b.y0)
        if len(lines) >= 2 and lines[0].norm == wanted:
            lines = lines[1:]  # the field showing what was typed
        elif lines and lines[0].norm == wanted and history.typed(self.name):
            lines = []
        if not lines:
            return Decision(
                f'No contact matches "{self.name}", so I ask who is meant.',
                TakeOver(message=f'I found no contact named "{self.name}". Please pick the recipient, '
                         "or tell me their number, then hand the phone back."),
                "no_contact",
            )  # fmt: skip
        row = lines[0]
        return Decision(
            f'Messages suggests "{row.text}" for "{self.name}"; I tap it.',
            Tap(element=screen.to_grid(*row.centre)),
            "pick_contact",
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
        label = screen.find(*self.labels)
        return Decision(
            f"{self.name} is {'on' if is_on else 'off'} and should be {want}; I tap its switch.",
            Tap(element=screen.to_grid(*point)),
            "toggle",
            alternative=Tap(element=screen.to_grid(*label.centre)) if label is not None else None,
        )


@dataclass(frozen=True)
class SetSwitches:
    """Several switches, each in its wanted state at once (turning airplane mode on turns Wi-Fi off, so
    each is checked again until all hold); the first one out of place is tapped."""

    switches: tuple[SetSwitch, ...]

    def done(self, screen: Screen, history: History) -> bool:
        return all(s.done(screen, history) for s in self.switches)

    def next(self, screen: Screen, history: History) -> Decision | None:
        for switch in self.switches:
            if not switch.done(screen, history):
                return switch.next(screen, history)
        return None


@dataclass(frozen=True)
class TapResult:
    """Tap a search result: below the results header (the search field above still shows the query,
    which may be the product's very name), the line that is ``product``, else the topmost line that
    contains a word of the query, else the topmost result (the shop matched the name in another
    language)."""

    query: str
    header: tuple[Phrase, ...]
    reached: ScreenCheck
    product: str = ""

    def done(self, screen: Screen, history: History) -> bool:
        return self.reached(screen)

    def next(self, screen: Screen, history: History) -> Decision | None:
        header = screen.find(*self.header)
        if header is None:
            return None
        below = sorted((b for b in screen.content if b.y0 > header.y1), key=lambda b: b.y0)
        wanted = normalise(self.product)
        words = [normalise(w) for w in self.query.split() if len(w) > 1]
        exact = [b for b in below if wanted and b.norm == wanted]
        partial = [b for b in below if wanted and wanted in b.norm]
        named = [b for b in below if any(w in b.norm for w in words)]
        target = (exact or partial or named or below or [None])[0]
        if target is None:
            return None
        # A product the shop found but lists under another name (a Chinese name searched on an English
        # phone): the search was for its very name, so its top result is the one.
        named_so = self.product and (exact or partial)
        what = f'"{target.text}"' if named_so else f'the first result for "{self.query}", "{target.text}"'
        return Decision(
            f"I tap {what} to open the product.", Tap(element=screen.to_grid(*target.centre)), "tap_result"
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


PlanPart = (
    OpenApp | TapText | Fill | PickContact | SubmitSearch | SetSwitch | SetSwitches | TapResult | HumanLogin
)

__all__ = [
    "Decision",
    "Fill",
    "History",
    "HumanLogin",
    "OpenApp",
    "PickContact",
    "PlanPart",
    "ScreenCheck",
    "SetSwitch",
    "SetSwitches",
    "SubmitSearch",
    "TapResult",
    "TapText",
    "app_names",
    "front_package",
    "launcher_visible",
    "screen_app",
]
