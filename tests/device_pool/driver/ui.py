"""Finding views in a uiautomator dump, so tests tap what the phone's own view tree says is there."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    text: str
    resource_id: str
    desc: str
    bounds: tuple[int, int, int, int]
    focused: bool

    @property
    def center(self) -> tuple[int, int]:
        left, top, right, bottom = self.bounds
        return (left + right) // 2, (top + bottom) // 2


def nodes(xml: str) -> list[Node]:
    found = []
    for element in ET.fromstring(xml).iter("node"):
        numbers = [int(n) for n in re.findall(r"-?\d+", element.get("bounds", ""))]
        found.append(
            Node(
                text=element.get("text", ""),
                resource_id=element.get("resource-id", ""),
                desc=element.get("content-desc", ""),
                bounds=(numbers[0], numbers[1], numbers[2], numbers[3]),
                focused=element.get("focused") == "true",
            )
        )
    return found


def find(xml: str, *, text: str | None = None, rid: str | None = None) -> Node:
    """The first node with this text and/or resource-id suffix; AssertionError (with the tree) if none."""
    for node in nodes(xml):
        if text is not None and node.text != text:
            continue
        if rid is not None and not node.resource_id.endswith(f":id/{rid}"):
            continue
        return node
    raise AssertionError(
        f"no node text={text!r} rid={rid!r} in {[n.text or n.resource_id for n in nodes(xml)]}"
    )


def texts(xml: str, rid: str) -> list[str]:
    return [n.text for n in nodes(xml) if n.resource_id.endswith(f":id/{rid}")]
