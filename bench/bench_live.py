"""Live view: frames per second in a browser, glass-to-glass latency, CPU per stream, 1 vs 10 viewers.

Starts everything it needs and removes it afterwards:

- a throwaway PostgreSQL database, migrated to head (dropped at the end), and an admin API key;
- one virtual phone (``phonefleet sim``, 720x1600 by default) with its frame counter on: every
  redraw stamps the frame's number and the wall-clock time it was drawn (``device_pool/sim/counter.py``);
  ``--tick HZ`` redraws it that often, a screen that keeps changing (like a spinner or a video);
- a private adb server, and ``phonefleet api`` (one worker) with ICE pinned to 127.0.0.1;
- headless Chromium (Playwright) as the measured viewer: for every frame it presents
  (``requestVideoFrameCallback``) it reads the stamp back from the pixels, so the latency is
  drawn-on-the-phone → presented-in-the-browser on one clock (this host's);
- for the 10-viewer run, 9 more viewers: aiortc peers in a separate process that receive and
  reassemble every picture but do not decode it (a browser's decoding is the viewer's machine's cost).

Phases, each ``--seconds`` long, CPU from /proc for the API, the phone (the sim process: it renders
and encodes, as a phone's GPU and hardware encoder would) and the adb server:

1. still screen, 1 viewer (the phone sends nothing: the capture is idle);
2. changing screen, 1 viewer;
3. changing screen, 10 viewers.

The viewers and the phases are in ``bench/live_viewers.py``, the report in ``bench/live_report.py``.

``--captures`` runs the phases twice, once per capture kind (``webrtc.capture``: ``screenrecord``, then
``scrcpy`` with the virtual phone's scrcpy server), and reports them one under the other; with
``--viewers 1`` the 10-viewer phase is left out.

``--processes 2`` serves the viewers from ``phonefleet api --workers 2`` with Redis (``--redis-url``): the
viewers land on both workers, one of them owns the phone's stream and the other relays its pictures
(docs/live-view.md, "One capture per phone across API processes"); the report adds each worker's CPU,
which worker owned the stream, and how many recordings the phone ran (``phonefleet-sim recordings``).
Run it beside ``--processes 1`` with the same ``--redis-url`` for the baseline.

``--repeat`` measures instead what repeating the last picture (``webrtc.repeat_ms``) buys and costs
(``bench/live_repeat.py``): a new aiortc viewer's first decoded frame on a still phone, and the bytes
and API CPU of the repeats while the screen changes 5 times a second, with repeats on and off.
Everything shares this machine's cores (other work on it included): read the numbers as an upper
bound of what each part costs. Run from the repository root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python bench/bench_live.py [--tick 30] [--seconds 10] [--width 720 --height 1600]
    .venv/bin/python bench/bench_live.py --captures [--viewers 1] [--scrcpy-version 3.3.4]
    .venv/bin/python bench/bench_live.py --repeat [--trials 10] [--seconds 10]
    .venv/bin/python bench/bench_live.py --processes 2 [--redis-url redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.harness import free_port, stop_api, wait_ready  # noqa: E402
from bench.live_report import report  # noqa: E402
from bench.live_viewers import extra_viewers, run_phases  # noqa: E402
from tests.databases import migrate_to_head, throwaway_postgres  # noqa: E402
from tests.processes import adb_binary, start_adb_server, start_sim  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tick", type=float, default=30.0, help="screen changes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    parser.add_argument("--viewers", type=int, default=10, help="viewers in the last phase")
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--max-width", type=int, default=720, help="webrtc.max_width (video width cap)")
    parser.add_argument(
        "--repeat", action="store_true", help="measure repeating the last picture (repeat_ms)"
    )
    parser.add_argument("--trials", type=int, default=10, help="--repeat: new viewers of the still phone")
    parser.add_argument(
        "--captures", action="store_true",
        help="screenrecord and the scrcpy path side by side (one API run each, same phone and adb server)",
    )
    parser.add_argument("--scrcpy-version", default="1.24", help="--captures: the scrcpy dialect (1.24 or 3.3.4)")
    parser.add_argument("--processes", type=int, default=1, help="API worker processes (>1 needs --redis-url)")
    parser.add_argument("--redis-url", default=None, help="Redis for the API (default with --processes > 1: "
                        "redis://127.0.0.1:6379/0)")  # fmt: skip
    parser.add_argument("--extra", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.extra:
        url, key, path, count, seconds = args.extra
        extra_viewers(url, key, path, int(count), float(seconds))
        return 0

    binary = adb_binary()
    if binary is None:
        print("bench_live: needs Debian's adb (apt-get install adb)", file=sys.stderr)
        return 2
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with throwaway_postgres("pfbench") as db, tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        migrate_to_head(db.url)
        (Path(tmp) / "sim").mkdir()
        sim = start_sim(Path(tmp) / "sim", width=args.width, height=args.height, density=320)
        adb = start_adb_server(Path(tmp) / "adbhome", binary)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
            "PHONEFLEET_DATABASE_URL": db.url, "PHONEFLEET_DATA_DIR": str(Path(tmp) / "data"),
            "PHONEFLEET_API__PORT": str(port), "PHONEFLEET_WEBRTC__HOST_ADDRESSES": '["127.0.0.1"]',
            "PHONEFLEET_WEBRTC__ADB_PORT": str(adb.port), "PHONEFLEET_WEBRTC__MAX_WIDTH": str(args.max_width),
            "PHONEFLEET_WEBRTC__MAX_VIEWERS_PER_DEVICE": str(max(10, args.viewers)),
        }  # fmt: skip
        redis_url = args.redis_url or ("redis://127.0.0.1:6379/0" if args.processes > 1 else None)
        if redis_url:
            env["PHONEFLEET_REDIS_URL"] = redis_url
        cli = [sys.executable, "-m", "orchestrator.cli"]
        key = subprocess.run([*cli, "admin", "create-key", "--tenant", "bench", "--admin"], env=env, cwd=REPO,
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
        device_id = asyncio.run(_register(db.url, sim.serial()))
        if args.repeat:
            from bench.live_repeat import run_repeat
            from device_pool.driver import AdbDevice

            phone = AdbDevice(sim.serial(), adb_port=adb.port)

            async def sim_shell(command: str) -> None:
                await phone.connect()
                await phone.shell(command, check=True)

            try:
                run_repeat(args, env, url, key, f"/api/v1/devices/{device_id}/webrtc", sim_shell, Path(tmp))
            finally:
                adb.stop()
                sim.stop()
            return 0
        kinds = ["screenrecord", "scrcpy"] if args.captures else [None]
        results, api_log = [], ""
        try:
            for kind in kinds:
                kind_env = dict(env)
                if kind is not None:
                    jar = Path(tmp) / "scrcpy-server.jar"  # the virtual phone runs its own server
                    jar.write_bytes(b"PK\x05\x06" + bytes(18))
                    kind_env.update({"PHONEFLEET_WEBRTC__CAPTURE": kind, "PHONEFLEET_WEBRTC__SCRCPY_SERVER_JAR": str(jar),
                                     "PHONEFLEET_WEBRTC__SCRCPY_SERVER_VERSION": args.scrcpy_version})  # fmt: skip
                rows, log_text = _run_api(args, cli, kind_env, url, key, device_id, sim, adb, Path(tmp) / f"api-{kind}.log")
                results.append((kind, rows))
                api_log += log_text
        finally:
            adb.stop()
            sim.stop()
    for kind, rows in results:
        report(args, rows, capture=f"scrcpy server {args.scrcpy_version}" if kind == "scrcpy" else "screenrecord")
    warnings = [line for line in api_log.splitlines() if "WARNING" in line or "ERROR" in line]
    if warnings:
        print(f"API log: {len(warnings)} warning/error lines, first: {warnings[0][:200]}")
    return 0


def _run_api(args, cli, env, url, key, device_id, sim, adb, log_path):  # type: ignore[no-untyped-def]
    """One ``phonefleet api`` with ``env`` and the phases measured through it: (rows, its log)."""
    from device_pool.driver import AdbDevice

    log = open(log_path, "w")  # noqa: SIM115 - closed below
    workers = ["--workers", str(args.processes)] if args.processes > 1 else []
    api = subprocess.Popen([*cli, "--log-level", "WARNING", "api", *workers], env=env, cwd=REPO, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_ready(url, api, path="/healthz")
        phone = AdbDevice(sim.serial(), adb_port=adb.port)

        async def shell(command: str) -> None:
            await phone.connect()
            await phone.shell(command, check=True)

        procs = {"api": api.pid, "phone": sim.proc.pid, "adb": adb.proc.pid}
        if args.processes > 1:  # each worker's own share too (report: not added to the total)
            procs.update({f"worker:{pid}": pid for pid in _children(api.pid)})
        async def probe() -> dict[str, object]:
            await phone.connect()
            return await _sharing(env["PHONEFLEET_REDIS_URL"], device_id, phone)

        path = f"/api/v1/devices/{device_id}/webrtc"
        sharing = probe if args.processes > 1 else None
        rows = asyncio.run(run_phases(args, url, key, path, procs, shell, sharing))
    finally:
        stop_api(api)
        log.close()
    return rows, log_path.read_text()


def _children(pid: int) -> list[int]:
    """uvicorn's worker processes: the children of its parent that are Python's spawned processes."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if any(b"spawn_main" in part for part in argv):
                found.append(int(child))
    return found


async def _sharing(redis_url: str, device_id: uuid.UUID, phone) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Who owned the stream (its token: host:pid:hub), how many processes relayed, the phone's recordings."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    try:
        owner = await r.get(f"phonefleet:live:owner:{device_id}")
        relays = (await r.pubsub_numsub(f"phonefleet:live:units:{device_id}"))[0][1]
    finally:
        await r.aclose()
    out = (await phone.shell("phonefleet-sim recordings", check=True)).stdout
    return {"owner": owner.decode() if owner else None, "relays": relays, "recordings": out.strip()}


async def _register(db_url: str, serial: str) -> uuid.UUID:
    """The phone as an idle pool device (an admin may watch a phone no one holds)."""
    from device_pool.pool import LeaseStore
    from orchestrator.db import make_engine

    engine = make_engine(db_url)
    store = LeaseStore.for_engine(engine)
    try:
        record = await store.register(provider="sim", serial=serial, profile={"bench": True})
        await store.mark_idle(record.id)
        return record.id
    finally:
        await store.close()
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
