"""Finding views in a uiautomator dump, so tests tap what the phone's own view tree says is there."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from device_pool.driver import AdbDevice
from tests.aio import run, until


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


# --- driving a phone by what its view tree shows (async, for scenarios written as one coroutine) ------


async def wait_for_node(
    device: AdbDevice, *, text: str | None = None, rid: str | None = None, timeout: float = 10.0
) -> Node:
    """Poll the view tree until the node is on screen (an app's starting window ignores taps until then)."""
    return await until(
        lambda: find(run(device.ui_dump()), text=text, rid=rid), timeout, f"{text or rid!r} on screen"
    )


async def wait_gone(
    device: AdbDevice, *, text: str | None = None, rid: str | None = None, timeout: float = 10.0
) -> None:
    """Poll the view tree until no node has this text and/or resource-id (a dialog closed)."""

    def gone() -> bool:
        try:
            find(run(device.ui_dump()), text=text, rid=rid)
        except AssertionError:
            return True
        return False

    await until(gone, timeout, f"{text or rid!r} gone")


async def tap_node(
    device: AdbDevice, *, text: str | None = None, rid: str | None = None, timeout: float = 10.0
) -> Node:
    """Wait for the node, tap its centre, and return it."""
    node = await wait_for_node(device, text=text, rid=rid, timeout=timeout)
    await device.tap(*node.center)
    return node


async def wait_for_foreground(device: AdbDevice, package: str, timeout: float = 10.0) -> str:
    """Poll ``foreground()`` until ``package`` is in front; returns its activity."""

    def activity_in_front() -> str | None:
        found, activity = run(device.foreground())
        return activity if found == package else None

    return await until(activity_in_front, timeout, f"{package} in front")
