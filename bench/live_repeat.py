"""``bench_live.py --repeat``: what repeating the last picture (``webrtc.repeat_ms``) buys and costs.

For ``repeat_ms`` 100 and 0 (off), against the same phone and a fresh API each:

- **first picture**: ``--trials`` times, a new aiortc viewer (decoding, as ``tests/orchestrator/live/
  peer.py``) connects to the still phone; the time from its offer to its first decoded frame (none
  within ``FIRST_FRAME_WAIT_S``: counted as a miss). The first trial starts the phone's capture, the
  others join a running one (the GOP from memory);
- **cost**: the screen changes ``CHANGE_HZ`` times a second (each change followed by a still gap
  longer than ``repeat_ms``, so every change is repeated: the worst case) with one decoding viewer
  for ``--seconds``: frames decoded per second, RTP packets received per second, the API's CPU. A
  repeat is one packet of about 10 bytes of H.264 (``tests/orchestrator/live/test_repeat.py``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.harness import percentile, stop_api, tree_cpu_s, wait_ready

__all__ = ["run_repeat"]

FIRST_FRAME_WAIT_S = 5.0
CHANGE_HZ = 5.0


async def _first_frame(url: str, key: str, path: str) -> float | None:
    from tests.orchestrator.live.peer import watch_once

    return (await watch_once(url, key, path, timeout=FIRST_FRAME_WAIT_S))[0]


async def _cost(url: str, key: str, path: str, api_pid: int, seconds: float) -> dict[str, float]:
    from tests.orchestrator.live.peer import LiveClient

    client = LiveClient()

    async def rtp_packets() -> int:  # aiortc's receiver stats count packets, not bytes
        stats = await client.pc.getStats()
        return sum(getattr(s, "packetsReceived", 0) for s in stats.values() if s.type == "inbound-rtp")

    try:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            (await client.connect(http, path)).raise_for_status()
            await client.wait_frames(2, timeout=30)
            await asyncio.sleep(1)
            frames0, packets0, cpu0, t0 = (
                client.frames,
                await rtp_packets(),
                tree_cpu_s(api_pid),
                time.monotonic(),
            )
            await asyncio.sleep(seconds)
            wall = time.monotonic() - t0
            return {
                "fps": (client.frames - frames0) / wall,
                "packets_s": (await rtp_packets() - packets0) / wall,
                "api_cpu": (tree_cpu_s(api_pid) - cpu0) / wall,
            }
    finally:
        await client.close()


def run_repeat(
    args: Any, env: dict[str, str], url: str, key: str, path: str, shell: Callable[[str], Awaitable[None]],
    log_dir: Path,
) -> None:  # fmt: skip
    from orchestrator.live.ice import pin_host_addresses

    pin_host_addresses(["127.0.0.1"])
    cli = [sys.executable, "-m", "orchestrator.cli"]
    rows = []
    for repeat_ms in (100, 0):
        with open(log_dir / f"api-repeat-{repeat_ms}.log", "w") as log:
            api = subprocess.Popen(
                [*cli, "--log-level", "WARNING", "api"],
                env={**env, "PHONEFLEET_WEBRTC__REPEAT_MS": str(repeat_ms), "PHONEFLEET_WEBRTC__LINGER_S": "30"},
                cwd=os.getcwd(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            try:
                wait_ready(url, api, path="/healthz")
                asyncio.run(shell("phonefleet-sim frame-counter on --tick 0"))
                firsts = [asyncio.run(_first_frame(url, key, path)) for _ in range(args.trials)]
                asyncio.run(shell(f"phonefleet-sim frame-counter on --tick {CHANGE_HZ:g}"))
                cost = asyncio.run(_cost(url, key, path, api.pid, args.seconds))
                asyncio.run(shell("phonefleet-sim frame-counter on --tick 0"))
            finally:
                stop_api(api)
        rows.append((repeat_ms, firsts, cost))

    load = os.getloadavg()
    print(f"repeat the last picture: aiortc viewers (decoding); {os.cpu_count()} CPUs, load avg {load[0]:.1f}; "
          f"{args.trials} new viewers of a still phone; then {CHANGE_HZ:g} changes/s for {args.seconds:g} s")  # fmt: skip
    print(f"{'repeat_ms':>9} {'first frame p50':>15} {'max':>7} {'misses':>6} {'1st (capture start)':>19} "
          f"{'fps at 5 Hz':>11} {'RTP pkt/s':>9} {'API CPU':>8}")  # fmt: skip
    for repeat_ms, firsts, cost in rows:
        got = [t for t in firsts if t is not None]
        misses = len(firsts) - len(got)
        p50 = f"{percentile(got, 0.5) * 1000:.0f} ms" if got else "-"
        top = f"{max(got) * 1000:.0f} ms" if got else "-"
        first = f"{firsts[0] * 1000:.0f} ms" if firsts and firsts[0] is not None else "none"
        print(f"{repeat_ms:>9} {p50:>15} {top:>7} {misses:>6} {first:>19} {cost['fps']:>11.1f} "
              f"{cost['packets_s']:>9.1f} {cost['api_cpu'] * 100:>7.2f}%")  # fmt: skip
    print(f"a miss: no decoded frame within {FIRST_FRAME_WAIT_S:g} s")
