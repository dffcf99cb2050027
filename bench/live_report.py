"""The report of ``bench_live.py``: per phase the frames per second, latency, and CPU of the API, the
phone and the adb server; how the cost grows from 1 viewer to N."""

from __future__ import annotations

import argparse
import os
import platform

from bench.harness import percentile

__all__ = ["report"]


def report(args: argparse.Namespace, rows: list, capture: str = "screenrecord") -> None:  # type: ignore[type-arg]
    load = os.getloadavg()
    print(
        f"live view: phone {args.width}x{args.height} → video ≤{args.max_width} px wide, H.264 from the phone's "
        f"{capture}; {os.cpu_count()} CPUs ({platform.machine()}), load avg {load[0]:.1f}; Python "
        f"{platform.python_version()}; viewer: headless Chromium; {args.seconds:g} s per phase"
    )
    print(f"{'phase':<20} {'viewers':>7} {'fps':>5} {'lat p50':>8} {'p95':>6} {'max':>6} "
          f"{'API CPU':>8} {'phone CPU':>9} {'adb CPU':>8} {'total':>7}")  # fmt: skip
    totals = {}
    for name, viewers, m in rows:
        cpu = {k: v for k, v in m["cpu"].items() if not k.startswith("worker:")}
        workers = {k.split(":", 1)[1]: v for k, v in m["cpu"].items() if k.startswith("worker:")}
        total = sum(cpu.values())
        totals[viewers] = (total, cpu["api"])
        # A still screen's pictures are old by design: their age is not a latency.
        lat = m["lat"] if name.startswith("changing") else []
        p50, p95, top = (f"{percentile(lat, 0.5):>6.0f}ms", f"{percentile(lat, 0.95):>4.0f}ms", f"{max(lat):>4.0f}ms") if lat else (
            f"{'-':>8}", f"{'-':>6}", f"{'-':>6}")  # fmt: skip
        print(
            f"{name:<20} {viewers:>7} {m['fps']:>5.1f} {p50} {p95} {top} {cpu['api'] * 100:>7.1f}% "
            f"{cpu['phone'] * 100:>8.1f}% {cpu['adb'] * 100:>7.1f}% {total * 100:>6.1f}%"
        )
        if workers:  # part of the API's share above
            print("  API workers: " + ", ".join(f"pid {pid} {share * 100:.1f}%" for pid, share in workers.items()))
        if "extra" in m:
            extra = m["extra"]
            print(f"  the other {len(extra)} viewers received {min(extra):.1f}–{max(extra):.1f} pictures/s")
        if "sharing" in m:
            sharing = m["sharing"]
            print(f"  stream owner {sharing['owner']}, {sharing['relays']} relaying process(es); "
                  f"the phone's recordings: {sharing['recordings']}")  # fmt: skip
    changing = [(v, m) for name, v, m in rows if name.startswith("changing")]
    if len(changing) == 2:
        (_, one), (n, many) = changing

        def summed(m: dict) -> float:  # type: ignore[type-arg]
            return sum(v for k, v in m["cpu"].items() if not k.startswith("worker:"))

        t1, tn = summed(one), summed(many)
        print(f"{n} viewers / 1 viewer: all processes {tn / t1:.2f}x; the API alone {many['cpu']['api'] / one['cpu']['api']:.2f}x; "
              f"per extra viewer the API spends {(many['cpu']['api'] - one['cpu']['api']) / (n - 1) * 100:.1f}% of a core")  # fmt: skip
    print("CPU: share of one core, user+system, over the phase (phone = the sim process: renders and encodes)")
