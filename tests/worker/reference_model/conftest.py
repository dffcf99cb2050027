"""Fixtures for the reference model: the real server process, and real virtual-phone screenshots."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from device_pool.sim.phone import PhoneConfig, VirtualPhone
from tests.processes import ReferenceModel, start_reference_model

SCRIPT = [
    'do(action="Launch", app="Settings")',
    '<think>Custom reply.</think><answer>do(action="Tap", element=[500, 300])',
    'finish(message="done, "quoted", 完成")',
]


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceModel]:
    """A server replaying ``SCRIPT``, under another model name."""
    folder = tmp_path_factory.mktemp("refscript")
    script = folder / "script.json"
    script.write_text(json.dumps(SCRIPT), encoding="utf-8")
    server = start_reference_model(folder, script=script, model_name="scripted-glm")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(reference_model: ReferenceModel) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reference_model.base_url, timeout=60.0) as http:
        yield http


def make_phone(tmp_path: Path) -> VirtualPhone:
    """A factory-fresh 1080x2400 phone without the launch splash (tests that want it set it up)."""
    return VirtualPhone(tmp_path / "phone", PhoneConfig(launch_delay_ms=0))


def tap_node(phone: VirtualPhone, text: str | None = None, rid: str | None = None) -> None:
    node = phone.find(text=text, rid=rid)
    assert node is not None, f"{text or rid!r} is not on screen"
    phone.tap(*node.center)


def image_part(phone: VirtualPhone, fmt: str = "JPEG") -> dict[str, Any]:
    """The screenshot as the agent sends it: half size, JPEG (or PNG), as a data URL."""
    img = phone.frame().image().convert("RGB").reduce(2)
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=85)
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return {
        "type": "image_url",
        "image_url": {"url": f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"},
    }


def agent_messages(
    task: str, phone: VirtualPhone, current_app: str, earlier: list[str] | None = None
) -> list[dict[str, Any]]:
    """Messages shaped as the agent loop builds them: system, task + screen info, earlier replies."""
    info = json.dumps({"current_app": current_app}, ensure_ascii=False)
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a phone agent."}]
    turns = earlier or []
    for i, reply in enumerate(turns):
        messages.append(
            {"role": "user", "content": f"{task}\n\n{info}" if i == 0 else f"** Screen Info **\n\n{info}"}
        )
        messages.append({"role": "assistant", "content": reply})
    text = f"{task}\n\n{info}" if not turns else f"** Screen Info **\n\n{info}"
    messages.append({"role": "user", "content": [image_part(phone), {"type": "text", "text": text}]})
    return messages
