"""Per-step overhead of the agent loop (everything but the model) against the virtual phone at 1080x2400.

For Tap, Swipe, Type and Launch, two pipelines are timed on the same phone through the same adb server:

- PhoneFleet: raw screenshot over exec-out + foreground app, the screenshot encoded for the model
  (JPEG, 1 MP budget), the action through AdbDevice, then settle detection (AgentConfig defaults).
- The Open-AutoGLM way, re-enacted: `screencap -p` to a file on the phone, `adb pull`, PNG
  re-encoded and base64'd on the host, `dumpsys window` for the current app, the action through an
  `adb shell` subprocess, then its fixed sleeps (1 s per action; IME switch, clear, type and
  restore with 1 s after each for Type).

Also the bytes of image sent per step. Starts its own adb server and phone; stops them by pid.

    .venv/bin/python bench/bench_agent_step.py [--runs 10] [--baseline-runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_pool.driver import AdbDevice  # noqa: E402
from tests.processes import AdbServer, adb_binary, start_adb_server, start_sim  # noqa: E402
from tests.ui import find  # noqa: E402
from worker.agent import actions as a  # noqa: E402
from worker.agent.executor import ActionExecutor  # noqa: E402
from worker.agent.images import encode_screenshot  # noqa: E402
from worker.agent.loop import AgentConfig  # noqa: E402
from worker.agent.steering import AgentHooks, AgentSteering  # noqa: E402

CONFIG = AgentConfig()
ADB_IME = "com.android.adbkeyboard/.AdbIME"


async def _bounds(device: AdbDevice, rid: str) -> tuple[int, int]:
    return find(await device.ui_dump(), rid=rid).center


def _grid(point: tuple[int, int], size: tuple[int, int]) -> list[int]:
    return [point[0] * a.GRID_SIZE // size[0], point[1] * a.GRID_SIZE // size[1]]


async def _settle_launch(device: AdbDevice) -> None:
    await device.wait_for_settle(interval=CONFIG.launch_settle_interval_s, stable_frames=2)


async def _prepare(device: AdbDevice, kind: str, size: tuple[int, int]) -> list[a.Action]:
    """Put the phone where ``kind`` can repeat, and return the actions to alternate."""
    await device.key("home")
    # Cold starts: a warm app would come back on whatever screen the last run left it.
    await device.shell("am force-stop com.android.settings; am force-stop com.android.contacts")
    if kind == "Launch":
        return [a.Launch(app="Settings")]
    if kind == "Tap":
        await device.launch("Settings")
        await _settle_launch(device)
        return [a.Tap(element=_grid(await _bounds(device, "switch_wifi"), size))]
    if kind == "Swipe":
        await device.launch("Contacts")
        await _settle_launch(device)
        up = a.Swipe(start=[500, 800], end=[500, 300])
        return [up, a.Swipe(start=[500, 300], end=[500, 800])]
    await device.launch("Contacts")
    await _settle_launch(device)
    x, y = await _bounds(device, "floating_action_button")
    await device.tap(x, y)
    await device.wait_for_settle()
    await device.tap(*await _bounds(device, "editor_name"))
    return [a.TypeText(text="Ada Lovelace")]


async def _ours(device: AdbDevice, kind: str, runs: int) -> tuple[list[float], int]:
    size = await device.screen_size()
    actions = await _prepare(device, kind, size)
    executor = ActionExecutor(device, size, AgentHooks(), AgentSteering())
    samples, sent = [], 0
    for i in range(runs + 1):
        action = actions[i % len(actions)]
        if kind == "Launch":
            await device.key("home")
            await device.wait_for_settle()
        t0 = time.perf_counter()
        image = await device.screenshot("raw")
        await device.foreground()
        encoded = encode_screenshot(image, 1_000_000, "jpeg", 80)
        await executor.execute(action)
        launch = isinstance(action, a.Launch)
        await device.wait_for_settle(
            timeout=CONFIG.settle_timeout_s,
            interval=CONFIG.launch_settle_interval_s if launch else CONFIG.settle_interval_s,
            stable_frames=2 if launch else CONFIG.settle_frames,
        )
        if i:  # the first run warms up caches
            samples.append((time.perf_counter() - t0) * 1000)
            sent = encoded.bytes_len
    return samples, sent


def _adb(server: AdbServer, serial: str, *args: str) -> subprocess.CompletedProcess:
    return server.run("-s", serial, *args, timeout=60)


def _baseline_capture(server: AdbServer, serial: str, tmp: Path) -> int:
    _adb(server, serial, "shell", "screencap", "-p", "/sdcard/tmp.png")
    local = tmp / "shot.png"
    _adb(server, serial, "pull", "/sdcard/tmp.png", str(local))
    img = Image.open(local)
    buf = io.BytesIO()
    img.save(buf, format="PNG")  # re-encoded on the host, as the reference client does
    data = base64.b64encode(buf.getvalue())
    local.unlink()
    _adb(server, serial, "shell", "dumpsys", "window")
    return len(buf.getvalue()) if data else 0


def _baseline_act(server: AdbServer, serial: str, action: a.Action, size: tuple[int, int]) -> None:
    def px(p):
        return str(int(p[0] / a.GRID_SIZE * size[0])), str(int(p[1] / a.GRID_SIZE * size[1]))

    if isinstance(action, a.Tap):
        _adb(server, serial, "shell", "input", "tap", *px(action.element))
        time.sleep(1.0)
    elif isinstance(action, a.Swipe):
        _adb(server, serial, "shell", "input", "swipe", *px(action.start), *px(action.end), "400")
        time.sleep(1.0)
    elif isinstance(action, a.Launch):
        _adb(server, serial, "shell", "monkey", "-p", "com.android.settings", "-c",
             "android.intent.category.LAUNCHER", "1")  # fmt: skip
        time.sleep(1.0)
    else:
        original = _adb(server, serial, "shell", "settings", "get", "secure", "default_input_method").stdout
        _adb(server, serial, "shell", "ime", "set", ADB_IME)
        time.sleep(1.0)
        _adb(server, serial, "shell", "am", "broadcast", "-a", "ADB_CLEAR_TEXT")
        time.sleep(1.0)
        msg = base64.b64encode(action.text.encode()).decode()
        _adb(server, serial, "shell", "am", "broadcast", "-a", "ADB_INPUT_B64", "--es", "msg", msg)
        time.sleep(1.0)
        _adb(server, serial, "shell", "ime", "set", original.decode().strip())
        time.sleep(1.0)


async def _baseline(
    device: AdbDevice, server: AdbServer, kind: str, runs: int, tmp: Path
) -> tuple[list[float], int]:
    size = await device.screen_size()
    actions = await _prepare(device, kind, size)
    samples, sent = [], 0
    for i in range(runs):
        action = actions[i % len(actions)]
        if kind == "Launch":
            await device.key("home")
            await device.wait_for_settle()
        t0 = time.perf_counter()
        sent = await asyncio.to_thread(_baseline_capture, server, device.serial, tmp)
        await asyncio.to_thread(_baseline_act, server, device.serial, action, size)
        samples.append((time.perf_counter() - t0) * 1000)
    return samples, sent


async def _measure(device: AdbDevice, server: AdbServer, runs: int, baseline_runs: int, tmp: Path):
    await device.connect()
    await device.shell(f"ime enable {ADB_IME}")
    rows = []
    for kind in ("Tap", "Swipe", "Type", "Launch"):
        ours, ours_bytes = await _ours(device, kind, runs)
        base, base_bytes = await _baseline(device, server, kind, baseline_runs, tmp)
        rows.append((kind, ours, base, ours_bytes, base_bytes))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--baseline-runs", type=int, default=3)
    args = parser.parse_args()
    binary = adb_binary()
    if binary is None:
        print("Debian's adb client is not installed (apt-get install adb)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        server = start_adb_server(Path(tmp) / "adbhome", binary)
        phones = start_sim(Path(tmp), width=1080, height=2400, density=420)
        try:
            device = AdbDevice(phones.serial(), adb_port=server.port)
            rows = asyncio.run(_measure(device, server, args.runs, args.baseline_runs, Path(tmp)))
        finally:
            phones.stop()
            server.stop()
    print(f"Per-step overhead at 1080x2400 (no model time); {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"{'action':<8} {'ours p50 ms':>12} {'ours p90 ms':>12} {'baseline p50 ms':>16} {'speed-up':>9}"
          f" {'image bytes ours':>17} {'full PNG':>10} {'ratio':>6}")  # fmt: skip
    for kind, ours, base, ours_bytes, base_bytes in rows:
        p50, p90 = statistics.median(ours), sorted(ours)[int(0.9 * (len(ours) - 1))]
        b50 = statistics.median(base)
        print(f"{kind:<8} {p50:>12.0f} {p90:>12.0f} {b50:>16.0f} {b50 / p50:>8.1f}x"
              f" {ours_bytes:>17,} {base_bytes:>10,} {ours_bytes / base_bytes:>6.2f}")  # fmt: skip
    # Flat screens (Settings, Contacts) make small PNGs; photo-like ones (home, shop) large ones.
    ours_all, base_all = sum(r[3] for r in rows), sum(r[4] for r in rows)
    print(
        f"{'all four':<8} {'':>12} {'':>12} {'':>16} {'':>9} {ours_all:>17,} {base_all:>10,} {ours_all / base_all:>6.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
