"""The view tree: the single truth that pixels, hit tests and `uiautomator dump` all come from.

Apps build a fresh tree from their state each time it is needed (it is small), so whatever the
state says is exactly what is drawn, tapped and dumped. A node carries the accessibility fields
uiautomator reports, the drawing attributes the renderer needs, and the callbacks input triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

Bounds = tuple[int, int, int, int]  # left, top, right, bottom in screen px (right/bottom exclusive)
Color = tuple[int, int, int]
Callback = Callable[[], None]

FRAME = "android.widget.FrameLayout"
LINEAR = "android.widget.LinearLayout"
TEXT = "android.widget.TextView"
BUTTON = "android.widget.Button"
IMAGE = "android.widget.ImageView"
IMAGE_BUTTON = "android.widget.ImageButton"
EDIT = "android.widget.EditText"
SWITCH = "android.widget.Switch"
CHECKBOX = "android.widget.CheckBox"
SCROLL = "android.widget.ScrollView"
RECYCLER = "androidx.recyclerview.widget.RecyclerView"
VIEW = "android.view.View"
VIEW_GROUP = "android.view.ViewGroup"


@dataclass(eq=False, slots=True)
class View:
    """One node. ``text`` is the value; an empty editable field shows (and reports) its ``hint``."""

    cls: str = FRAME
    bounds: Bounds = (0, 0, 0, 0)
    text: str = ""
    hint: str = ""
    rid: str = ""
    desc: str = ""
    package: str = ""
    clickable: bool = False
    long_clickable: bool = False
    focusable: bool = False
    focused: bool = False
    checkable: bool = False
    checked: bool = False
    password: bool = False
    scrollable: bool = False
    enabled: bool = True
    selected: bool = False
    children: list[View] = field(default_factory=list)
    # Drawing attributes (see render.py): background, text colour and size (px), alignment,
    # corner radius (px), border colour, and an optional drawn glyph ("switch", "wifi", ...).
    bg: Color | None = None
    fg: Color = (33, 33, 33)
    size: int = 0
    bold: bool = False
    align: str = "left"  # left | center | right; text is always vertically centred unless wrap
    wrap: bool = False  # multi-line text from the top; otherwise one line, ellipsised
    radius: int = 0
    border: Color | None = None
    icon: str = ""
    icon_color: Color | None = None
    pad: int = 0
    # Behaviour.
    edit_key: str = ""  # key of the editable field this EditText shows (in its screen's state)
    on_click: Callback | None = None
    on_long_click: Callback | None = None
    on_scroll: Callable[[int], None] | None = None  # positive: content moves up (finger swipes up)

    def add(self, *views: View) -> View:
        self.children.extend(views)
        return self

    @property
    def shown_text(self) -> str:
        """What the screen shows and uiautomator reports: the hint when empty, dots when a password."""
        if self.password and self.text:
            return "•" * len(self.text)
        return self.text or self.hint

    @property
    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2

    def contains(self, x: float, y: float) -> bool:
        left, top, right, bottom = self.bounds
        return left <= x < right and top <= y < bottom

    def walk(self) -> Iterator[View]:
        yield self
        for child in self.children:
            yield from child.walk()

    def signature(self) -> tuple:
        """Everything that changes pixels or the dump, cheap to compare (no callbacks)."""
        return (
            self.cls, self.bounds, self.text, self.hint, self.rid, self.desc, self.package,
            self.clickable, self.long_clickable, self.focusable, self.focused, self.checkable,
            self.checked, self.password, self.scrollable, self.enabled, self.selected, self.bg,
            self.fg, self.size, self.bold, self.align, self.wrap, self.radius, self.border,
            self.icon, self.icon_color, self.pad, tuple(c.signature() for c in self.children),
        )  # fmt: skip


@dataclass(eq=False, slots=True)
class Window:
    """A top-level window: its root view, and whether it is FLAG_SECURE."""

    root: View
    secure: bool = False


def set_package(view: View, package: str) -> View:
    """Stamp ``package`` on every node of a subtree that has none (apps build without it)."""
    for node in view.walk():
        if not node.package:
            node.package = package
    return view


def hit_test(windows: list[Window], x: float, y: float) -> View | None:
    """The deepest clickable node under (x, y), topmost window and topmost sibling first."""
    for window in reversed(windows):
        hit = _hit(window.root, x, y)
        if hit is not None:
            return hit
    return None


def _hit(view: View, x: float, y: float) -> View | None:
    if not view.contains(x, y):
        return None
    for child in reversed(view.children):  # later siblings are drawn on top
        hit = _hit(child, x, y)
        if hit is not None:
            return hit
    if view.clickable or view.long_clickable or view.scrollable or view.edit_key:
        return view
    return None


def scroll_target(windows: list[Window], x: float, y: float) -> View | None:
    """The innermost scrollable node under (x, y) that can take a swipe."""
    for window in reversed(windows):
        found = None
        for node in window.root.walk():
            if node.scrollable and node.on_scroll is not None and node.contains(x, y):
                found = node
        if found is not None:
            return found
    return None


def find(windows: list[Window], pred: Callable[[View], bool]) -> View | None:
    for window in windows:
        for node in window.root.walk():
            if pred(node):
                return node
    return None


_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;"}


def _esc(text: str) -> str:
    out = []
    for ch in text:
        if ch in _XML_ESCAPES:
            out.append(_XML_ESCAPES[ch])
        elif ch < " " and ch != "\t":
            out.append("?")  # uiautomator replaces characters XML cannot hold
        else:
            out.append(ch)
    return "".join(out)


def _b(value: bool) -> str:
    return "true" if value else "false"


def _node_xml(view: View, index: int, out: list[str]) -> None:
    left, top, right, bottom = view.bounds
    out.append(
        f'<node index="{index}" text="{_esc(view.shown_text)}" resource-id="{_esc(view.rid)}" '
        f'class="{view.cls}" package="{_esc(view.package)}" content-desc="{_esc(view.desc)}" '
        f'checkable="{_b(view.checkable)}" checked="{_b(view.checked)}" clickable="{_b(view.clickable)}" '
        f'enabled="{_b(view.enabled)}" focusable="{_b(view.focusable)}" focused="{_b(view.focused)}" '
        f'scrollable="{_b(view.scrollable)}" long-clickable="{_b(view.long_clickable)}" '
        f'password="{_b(view.password)}" selected="{_b(view.selected)}" '
        f'bounds="[{left},{top}][{right},{bottom}]"'
    )
    if not view.children:
        out.append(" />")
        return
    out.append(">")
    for i, child in enumerate(view.children):
        _node_xml(child, i, out)
    out.append("</node>")


def to_uiautomator_xml(windows: list[Window], rotation: int = 0) -> str:
    """Serialise as `uiautomator dump` does: one line, one root <node> per window."""
    out = [f"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"{rotation}\">"]
    for window in windows:
        _node_xml(window.root, 0, out)
    out.append("</hierarchy>")
    return "".join(out)


__all__ = [
    "BUTTON", "CHECKBOX", "EDIT", "FRAME", "IMAGE", "IMAGE_BUTTON", "LINEAR", "RECYCLER", "SCROLL",
    "SWITCH", "TEXT", "VIEW", "VIEW_GROUP", "Bounds", "Color", "View", "Window", "find", "hit_test",
    "scroll_target", "set_package", "to_uiautomator_xml",
]  # fmt: skip
