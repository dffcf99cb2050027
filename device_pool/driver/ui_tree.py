"""The elements of a uiautomator dump (``AdbDevice.ui_dump``) that a person or a model can act on.

Used to name what a tap hits (``element_at``: a confirmation reads "Tap “Pay $12.99”", not a grid
point), and where the screenshot cannot show the screen: a secure window (FLAG_SECURE) captures black on
Android, yet its view tree is still readable, so the live view outlines its elements and the agent
is told their labels; and to tell whether the focused field is a password (typed text is then never
recorded in clear); and ``ui_nodes`` gives every node a client can act on, with an element id, for
the session device API's compact UI tree (tap by element id).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

__all__ = ["UiElement", "UiNode", "element_at", "focused_is_password", "ui_elements", "ui_nodes"]

_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")


@dataclass(frozen=True)
class UiElement:
    """One node worth showing: it has a label (text, hint or description) or can be tapped or typed in."""

    bounds: tuple[int, int, int, int]  # left, top, right, bottom in screen pixels
    label: str  # its text (dots for a password), else its description, else its resource id's name
    kind: str  # the class's short name: EditText, Button, TextView, …
    clickable: bool
    editable: bool
    password: bool
    focused: bool

    def as_json(self, size: tuple[int, int]) -> dict[str, object]:
        """The element with its bounds as fractions (0–1) of a ``size`` (width, height) screen."""
        w, h = size
        left, top, right, bottom = self.bounds
        box = [round(left / w, 4), round(top / h, 4), round(right / w, 4), round(bottom / h, 4)]
        return {
            "bounds": box, "label": self.label, "kind": self.kind, "clickable": self.clickable,
            "editable": self.editable, "password": self.password, "focused": self.focused,
        }  # fmt: skip


def ui_elements(ui_xml: str) -> list[UiElement]:
    """The labelled or actionable nodes of a dump, in document order (empty for XML that does not parse)."""
    try:
        root = ET.fromstring(ui_xml)
    except ET.ParseError:
        return []
    found = []
    for node in root.iter("node"):
        match = _BOUNDS.fullmatch(node.get("bounds", ""))
        if match is None:
            continue
        left, top, right, bottom = (int(g) for g in match.groups())
        if right <= left or bottom <= top:
            continue
        kind = node.get("class", "").rsplit(".", 1)[-1]
        editable = kind in ("EditText", "AutoCompleteTextView")
        rid = node.get("resource-id", "").rsplit("/", 1)[-1]
        label = node.get("text") or node.get("content-desc") or node.get("hint") or ""
        clickable = node.get("clickable") == "true"
        if not label and (clickable or editable):
            label = rid.replace("_", " ")
        if not label:
            continue
        found.append(
            UiElement(
                (left, top, right, bottom),
                label,
                kind,
                clickable,
                editable,
                node.get("password") == "true",
                node.get("focused") == "true",
            )
        )
    return found


def element_at(ui_xml: str, x: int, y: int) -> UiElement | None:
    """The element a tap at pixel (x, y) lands on: the smallest labelled one whose bounds hold the
    point (a button's own text rather than the panel around it); None when none does."""
    hit = [e for e in ui_elements(ui_xml) if e.bounds[0] <= x < e.bounds[2] and e.bounds[1] <= y < e.bounds[3]]
    if not hit:
        return None
    return min(hit, key=lambda e: (e.bounds[2] - e.bounds[0]) * (e.bounds[3] - e.bounds[1]))


def focused_is_password(ui_xml: str) -> bool:
    """Whether the focused node is a password field; also True for XML that does not parse (typed
    text is then treated as secret rather than recorded in clear)."""
    try:
        root = ET.fromstring(ui_xml)
    except ET.ParseError:
        return True
    return any(n.get("focused") == "true" and n.get("password") == "true" for n in root.iter("node"))


@dataclass(frozen=True)
class UiNode:
    """A node of a dump a program or a model may act on or read, named by an element id.

    The id is a hash of what identifies the node on its screen (class, resource id, description,
    bounds) and not of its text, so a switch keeps its id when it turns from ON to OFF and a field
    keeps it while typed in; the same screen gives the same ids in every dump.
    """

    id: str
    bounds: tuple[int, int, int, int]  # left, top, right, bottom in screen pixels
    kind: str  # the class's short name
    text: str
    description: str
    resource_id: str
    clickable: bool
    editable: bool
    checkable: bool
    checked: bool
    scrollable: bool
    focused: bool
    password: bool

    @property
    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2

    def as_json(self) -> dict[str, object]:
        """Compact: bounds in pixels, and only the fields that say something (no empty text, no false flags)."""
        out: dict[str, object] = {"id": self.id, "kind": self.kind}
        for name in ("text", "description", "resource_id"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        out["bounds"] = list(self.bounds)
        for name in ("clickable", "editable", "checkable", "scrollable", "focused", "password"):
            if getattr(self, name):
                out[name] = True
        if self.checkable:
            out["checked"] = self.checked
        return out


def ui_nodes(ui_xml: str) -> list[UiNode]:
    """The nodes of a dump that have text or a description, or can be tapped, typed in, checked or
    scrolled, in document order (empty for XML that does not parse)."""
    try:
        root = ET.fromstring(ui_xml)
    except ET.ParseError:
        return []
    found: list[UiNode] = []
    seen: dict[str, int] = {}
    for node in root.iter("node"):
        match = _BOUNDS.fullmatch(node.get("bounds", ""))
        if match is None:
            continue
        bounds = tuple(int(g) for g in match.groups())
        if bounds[2] <= bounds[0] or bounds[3] <= bounds[1]:
            continue
        cls = node.get("class", "")
        kind = cls.rsplit(".", 1)[-1]
        flags = {name: node.get(name) == "true" for name in ("clickable", "checkable", "checked", "scrollable",
                                                             "focused", "password", "long-clickable")}  # fmt: skip
        editable = kind in ("EditText", "AutoCompleteTextView")
        text, description = node.get("text", ""), node.get("content-desc", "")
        acts = flags["clickable"] or flags["long-clickable"] or editable or flags["checkable"] or flags["scrollable"]
        if not (text or description or acts):
            continue
        rid = node.get("resource-id", "")
        digest = hashlib.sha1(f"{cls}|{rid}|{description}|{bounds}".encode()).hexdigest()[:6]
        element_id = f"e{digest}"
        seen[element_id] = seen.get(element_id, 0) + 1
        if seen[element_id] > 1:  # two nodes alike in every way we hash: the later ones numbered
            element_id = f"{element_id}-{seen[element_id]}"
        found.append(
            UiNode(
                element_id, bounds, kind, text, description, rid,  # type: ignore[arg-type]
                clickable=flags["clickable"] or flags["long-clickable"], editable=editable,
                checkable=flags["checkable"], checked=flags["checked"], scrollable=flags["scrollable"],
                focused=flags["focused"], password=flags["password"],
            )
        )  # fmt: skip
    return found
