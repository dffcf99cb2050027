"""What redaction costs per agent step, on the virtual phone's Bank login in plain sight (a password
field with text in it, ``"secure": false``), through a real adb server:

- ``ui_dump``: reading the view tree over adb (the step's one extra round trip; also what
  ``focused_is_password`` reads for a Type);
- ``regions (passwords)``: finding the password fields in the dump;
- ``regions (+ text patterns)``: the same with ``redaction.text_patterns`` (the opt-in);
- ``mask``: blacking them out on the full-size screenshot;
- ``ocr_regions (OCR)``: the opt-in OCR path (``redaction.text_source`` ``ocr`` or ``both``):
  RapidOCR reading the whole masked screenshot and the patterns matched against its lines (the
  engine's one-off load is printed apart);
- for scale, ``screenshot (raw)``: the capture every step makes anyway.

Starts its own adb server and ``phonefleet sim`` (private HOME, free ports) and stops each by its pid.
Run from the repository root:

    .venv/bin/python bench/bench_redaction.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_pool.driver import AdbDevice  # noqa: E402
from orchestrator.settings import DEFAULT_TEXT_PATTERNS  # noqa: E402
from tests.processes import adb_binary, start_adb_server, start_sim  # noqa: E402
from worker.agent import ocr  # noqa: E402
from worker.agent.redaction import RedactionRules, mask, ocr_regions, regions  # noqa: E402

BANK_DATA = "/data/data/com.phonefleet.bank/files/state.json"


async def _time(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await call()  # warm
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def _time_sync(call: Callable[[], object], runs: int) -> list[float]:
    async def wrapped() -> object:
        return call()

    return asyncio.run(_time(wrapped, runs))


async def _measure(device: AdbDevice, runs: int) -> tuple[str, object, tuple[int, int], dict[str, list[float]]]:
    await device.connect()
    await device.shell(f"mkdir -p /data/data/com.phonefleet.bank/files && echo '{{\"secure\": false}}' > {BANK_DATA}")
    await device.launch("com.phonefleet.bank")
    await device.wait_for_settle(timeout=5)
    tree = await device.ui_dump()
    size = await device.screen_size()
    image = await device.screenshot("raw")
    results = {
        "screenshot (raw)": await _time(lambda: device.screenshot("raw"), runs),
        "ui_dump": await _time(device.ui_dump, runs),
    }
    return tree, image, size, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    binary = adb_binary()
    if binary is None:
        print("Debian's adb client is not installed (apt-get install adb)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-redaction-") as tmp:
        server = start_adb_server(Path(tmp) / "adbhome", binary)
        try:
            data = Path(tmp) / "sim"
            data.mkdir()
            phones = start_sim(data, width=1080, height=2400, density=420)
            try:
                device = AdbDevice(phones.serial(), adb_port=server.port)
                tree, image, size, results = asyncio.run(_measure(device, args.runs))
            finally:
                phones.stop()
        finally:
            server.stop()
    passwords = RedactionRules()
    patterns = RedactionRules(patterns=tuple(DEFAULT_TEXT_PATTERNS.items()))
    found = regions(tree, passwords, size, image.size)
    results["regions (passwords)"] = _time_sync(lambda: regions(tree, passwords, size, image.size), args.runs)
    results["regions (+ text patterns)"] = _time_sync(lambda: regions(tree, patterns, size, image.size), args.runs)
    results["mask"] = _time_sync(lambda: mask(image, found), args.runs)
    t0 = time.perf_counter()
    ocr.warm_up()
    load_s = time.perf_counter() - t0
    masked = mask(image, found)
    read = ocr_regions(masked, patterns, found)
    results["ocr_regions (OCR)"] = _time_sync(lambda: ocr_regions(masked, patterns, found), max(3, args.runs // 3))
    print(f"Redaction per step on the virtual phone's Bank login ({size[0]}x{size[1]}, {len(found)} region(s)); "
          f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}")  # fmt: skip
    print(f"OCR engine load (once per process): {load_s * 1000:.0f} ms; OCR found {len(read)} more region(s)")
    print(f"{'call':<28} {'median ms':>10} {'p90 ms':>8} {'runs':>5}")
    for name, samples in results.items():
        ordered = sorted(samples)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"{name:<28} {statistics.median(samples):>10.2f} {p90:>8.2f} {len(samples):>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
