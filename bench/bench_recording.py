"""Recordings: what recording a phone costs the host, per phone, with the phone's encoder apart.

Starts what it needs and removes it afterwards: ``--phones`` virtual phones (one ``phonefleet sim``
process, 720x1600 by default) and a private adb server. This process then records every phone at
once with the recorder a worker uses (``orchestrator/live/recorder.py``: the phone's screenrecord
H.264, cut into pictures and muxed into fragmented MP4 by PyAV, nothing decoded or encoded), each
into its own file, for ``--seconds`` per phase:

1. still screen (the phone's encoder sends nothing: the recording is idle);
2. the screen redrawn ``--tick`` times a second (the sim's frame counter: a spinner, a video).

CPU from /proc, in % of one core per recorded phone: the recorder (this process, less what it used
before recording began), the adb server (it relays the video bytes: also the host's), and the phone
(the sim process: it renders and encodes, as a phone's GPU and hardware encoder would — on a real
phone this is not the host's). Bytes written per phone per second too; each file is then checked:
PyAV decodes it. Everything shares this machine's cores (other work on it included): read the
numbers as an upper bound. Run from the repository root:

    .venv/bin/python bench/bench_recording.py [--phones 4] [--seconds 10] [--tick 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import av  # noqa: E402

from bench.harness import tree_cpu_s  # noqa: E402
from device_pool.driver import AdbDevice  # noqa: E402
from orchestrator.live.capture import Capture  # noqa: E402
from orchestrator.live.geometry import VideoGeometry  # noqa: E402
from orchestrator.live.recorder import Recorder  # noqa: E402
from orchestrator.settings import Settings  # noqa: E402
from tests.processes import adb_binary, start_adb_server, start_sim  # noqa: E402


async def _phase(phones: list[AdbDevice], sim_pid: int, adb_pid: int, tick: float, seconds: float) -> dict[str, float]:
    for phone in phones:
        await phone.shell(f"phonefleet-sim frame-counter on --tick {tick:g}", check=True)
    await asyncio.sleep(1.0)  # the screens settle into the phase's pace
    wall0, own0 = time.monotonic(), time.process_time()
    sim0, adb0 = tree_cpu_s(sim_pid), tree_cpu_s(adb_pid)
    await asyncio.sleep(seconds)
    wall = time.monotonic() - wall0
    n = len(phones)
    return {
        "recorder": 100 * (time.process_time() - own0) / wall / n,
        "adb": 100 * (tree_cpu_s(adb_pid) - adb0) / wall / n,
        "phone": 100 * (tree_cpu_s(sim_pid) - sim0) / wall / n,
    }


async def _bench(args: argparse.Namespace, serials: list[str], adb_port: int, sim_pid: int, adb_pid: int,
                 out: Path) -> None:  # fmt: skip
    web = Settings().webrtc
    rec = Settings().recording
    phones, recorders = [], []
    for serial in serials:
        phone = AdbDevice(serial, adb_port=adb_port)
        await phone.connect(timeout=30)
        phones.append(phone)
    for i, phone in enumerate(phones):
        width, height = await phone.screen_size()
        geometry = VideoGeometry.for_screen(width, height, rec.max_width)

        def capture(serial: str = phone.serial, geometry: VideoGeometry = geometry) -> Capture:
            return Capture(serial, geometry, adb_host="127.0.0.1", adb_port=adb_port, bit_rate=rec.bit_rate,
                           time_limit_s=web.record_time_limit_s, flush_s=web.nal_flush_ms / 1000)  # fmt: skip

        recorders.append(Recorder(out / f"phone-{i}.mp4", geometry.video, capture))
    await phones[0].shell("phonefleet-sim frame-counter on --tick 0", check=True)
    for recorder in recorders:
        await recorder.start(rec.first_picture_timeout_s)
    rows = []
    for name, tick in (("still screen", 0.0), (f"screen redrawn {args.tick:g}/s", args.tick)):
        bytes0 = sum(r.bytes for r in recorders)
        pictures0 = sum(r.pictures for r in recorders)
        cpu = await _phase(phones, sim_pid, adb_pid, tick, args.seconds)
        n = len(recorders)
        cpu["kB/s"] = (sum(r.bytes for r in recorders) - bytes0) / args.seconds / n / 1000
        cpu["pictures/s"] = (sum(r.pictures for r in recorders) - pictures0) / args.seconds / n
        rows.append((name, cpu))
    for recorder in recorders:
        await recorder.stop()
    frames = []
    for recorder in recorders:
        with av.open(str(recorder.path)) as container:
            frames.append(sum(1 for _ in container.decode(container.streams.video[0])))
    print(f"\nRecording cost per phone ({len(recorders)} phones at once, {args.seconds:g} s per phase, "
          f"video {recorders[0].video_size[0]}x{recorders[0].video_size[1]}, {os.cpu_count()} cores here)\n")  # fmt: skip
    print("| phase | recorder (host) | adb server (host) | phone's encoder (sim, not host) | pictures/s | kB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, c in rows:
        print(f"| {name} | {c['recorder']:.2f} % | {c['adb']:.2f} % | {c['phone']:.1f} % | "
              f"{c['pictures/s']:.1f} | {c['kB/s']:.0f} |")  # fmt: skip
    print(f"\nEvery file decodes: {frames} frames (PyAV).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    parser.add_argument("--tick", type=float, default=30.0, help="screen redraws per second, second phase")
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=1600)
    args = parser.parse_args()
    binary = adb_binary()
    if binary is None:
        print("bench_recording: needs Debian's adb (apt-get install adb)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        (Path(tmp) / "sim").mkdir()
        sim = start_sim(Path(tmp) / "sim", count=args.phones, width=args.width, height=args.height, density=320)
        adb = start_adb_server(Path(tmp) / "adbhome", binary)
        try:
            out = Path(tmp) / "recordings"
            serials = [sim.serial(i) for i in range(sim.count)]
            asyncio.run(_bench(args, serials, adb.port, sim.proc.pid, adb.proc.pid, out))
        finally:
            adb.stop()
            sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
