"""Driver round trips against the virtual phone: screenshots (PNG, raw) and taps, median and p90.

Starts its own adb server (private HOME, free port) and one ``phonefleet sim`` process per
resolution, and stops each by its pid. Run from the repository root:

    .venv/bin/python bench/bench_driver.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_pool.driver import AdbDevice  # noqa: E402
from tests.processes import adb_binary, start_adb_server, start_sim  # noqa: E402

RESOLUTIONS = [(720, 1600, 320), (1080, 2400, 420)]


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _time(call: Callable[[], Awaitable[object]], runs: int) -> list[float]:
    await call()  # warm-up: first-call costs (features lookup, encoder caches) are not round trips
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _measure(device: AdbDevice, width: int, runs: int) -> dict[str, list[float]]:
    await device.connect()
    # The status bar ignores taps, so tapping it measures the round trip without changing the screen.
    tap_x, tap_y = width // 2, 4
    return {
        "screenshot png (bytes)": await _time(device.screencap_png, runs),
        "screenshot png → PIL": await _time(lambda: device.screenshot("png"), runs),
        "screenshot raw → PIL": await _time(lambda: device.screenshot("raw"), runs),
        "tap": await _time(lambda: device.tap(tap_x, tap_y), runs),
        "shell echo": await _time(lambda: device.shell("echo hi"), runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    binary = adb_binary()
    if binary is None:
        print("Debian's adb client is not installed (apt-get install adb)", file=sys.stderr)
        return 1
    rows: list[tuple[str, str, float, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        server = start_adb_server(Path(tmp) / "adbhome", binary)
        try:
            for width, height, density in RESOLUTIONS:
                data = Path(tmp) / f"sim-{width}x{height}"
                data.mkdir()
                phones = start_sim(data, width=width, height=height, density=density)
                try:
                    device = AdbDevice(phones.serial(), adb_port=server.port)
                    results = asyncio.run(_measure(device, width, args.runs))
                finally:
                    phones.stop()
                for name, samples in results.items():
                    rows.append(
                        (
                            f"{width}x{height}",
                            name,
                            statistics.median(samples),
                            _percentile(samples, 0.9),
                            len(samples),
                        )
                    )
        finally:
            server.stop()
    version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout.splitlines()[1:2]
    print(
        f"AdbDevice round trips to the virtual phone through adb server {' '.join(version)}; "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    )
    print(f"{'resolution':<11} {'call':<24} {'median ms':>10} {'p90 ms':>8} {'runs':>5}")
    for resolution, name, median, p90, count in rows:
        print(f"{resolution:<11} {name:<24} {median:>10.1f} {p90:>8.1f} {count:>5}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
