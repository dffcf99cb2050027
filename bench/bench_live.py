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

1. still screen, 1 viewer (the phone sends nothing: the recording is idle);
2. changing screen, 1 viewer;
3. changing screen, 10 viewers.

Everything shares this machine's cores (other work on it included): read the numbers as an upper
bound of what each part costs. Run from the repository root (PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python bench/bench_live.py [--tick 30] [--seconds 10] [--width 720 --height 1600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.databases import migrate_to_head, throwaway_postgres  # noqa: E402
from tests.processes import adb_binary, start_adb_server, start_sim  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns", "--no-sandbox",
    "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
_TICKS = os.sysconf("SC_CLK_TCK")

# The measured viewer. Reads the stamp (3 rows of 32 blocks at the bottom, counter.py) from each
# presented frame; samples: [seq, latency ms]. Date.now() and the phone's clock are this host's.
PAGE = """<!doctype html><meta charset="utf-8"><title>bench_live</title><body>
<script type="module">
const CHECK = 0x5A17C3E9;
window.samples = []; window.presented = 0; window.unreadable = 0;
function readStamp(ctx, w, h) {
  const rh = Math.max(6, Math.floor(h / 80)), top = h - 3 * rh;
  const px = ctx.getImageData(0, top, w, 3 * rh).data;
  const words = [];
  for (let row = 0; row < 3; row++) {
    const y = row * rh + Math.floor(rh / 2);
    let word = 0;
    for (let bit = 0; bit < 32; bit++) {
      const x0 = Math.floor(bit * w / 32), x1 = Math.floor((bit + 1) * w / 32), xm = Math.floor((x0 + x1) / 2);
      const i = (y * w + xm) * 4;
      word = (word * 2) + ((px[i] + px[i + 1] + px[i + 2]) / 3 > 128 ? 1 : 0);
    }
    words.push(word);
  }
  const [seq, ms, check] = words;
  return ((seq ^ ms ^ CHECK) >>> 0) === check ? {seq, ms} : null;
}
window.watch = async (path, key) => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.createDataChannel("control");
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.append(video);
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  const onFrame = () => {
    const now = Date.now();
    window.presented++;
    const w = video.videoWidth, h = video.videoHeight;
    if (w && h) {
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const stamp = readStamp(ctx, w, h);
      if (stamp) window.samples.push([stamp.seq, ((now % 4294967296) - stamp.ms + 4294967296) % 4294967296]);
      else window.unreadable++;
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
    Authorization: "Bearer " + key}, body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp})});
  if (!response.ok) throw new Error(await response.text());
  await pc.setRemoteDescription(await response.json());
  window.pc = pc;
};
window.reset = () => { window.samples = []; window.presented = 0; window.unreadable = 0; };
window.decoded = async () => {
  let n = 0;
  (await window.pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") n = s.framesDecoded || 0; });
  return n;
};
</script>"""


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                stack.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --- the 9 extra viewers (a process of their own) ---------------------------------------------------


def extra_viewers(url: str, key: str, path: str, count: int, seconds: float) -> None:
    """``count`` aiortc viewers that reassemble but do not decode pictures; prints "ready", then after
    ``seconds`` a JSON line with the pictures per second each received in that window."""
    import aiortc.rtcrtpreceiver as receiver
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from orchestrator.live.ice import pin_host_addresses

    pin_host_addresses(["127.0.0.1"])
    received: list[int] = []

    class Counting:  # stands in for the H.264 decoder: counts whole pictures, decodes nothing
        def __init__(self, index: int) -> None:
            self.index = index

        def decode(self, frame: object) -> list[object]:
            received[self.index] += 1
            return []

    made = iter(range(count))
    receiver.get_decoder = lambda codec: Counting(next(made))  # type: ignore[assignment]

    async def main() -> None:
        peers = []
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
            for _ in range(count):
                pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                pc.addTransceiver("video", direction="recvonly")
                pc.createDataChannel("control")
                await pc.setLocalDescription(await pc.createOffer())
                r = await http.post(path, json={"type": "offer", "sdp": pc.localDescription.sdp})
                r.raise_for_status()
                await pc.setRemoteDescription(RTCSessionDescription(sdp=r.json()["sdp"], type="answer"))
                received.append(0)
                peers.append(pc)
            while len(received) < count or min(received) < 2:
                await asyncio.sleep(0.05)
            print("ready", flush=True)
            start, t0 = list(received), time.monotonic()
            await asyncio.sleep(seconds)
            wall = time.monotonic() - t0
            print(json.dumps([(n - s) / wall for n, s in zip(received, start, strict=True)]), flush=True)
            for pc in peers:
                await pc.close()

    asyncio.run(main())


# --- the run -----------------------------------------------------------------------------------------


async def _measure(page, procs: dict[str, int], seconds: float) -> dict[str, object]:  # type: ignore[no-untyped-def]
    await page.evaluate("window.reset()")
    decoded0 = await page.evaluate("window.decoded()")
    cpu0 = {name: _cpu_s(pid) for name, pid in procs.items()}
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = {name: (_cpu_s(pid) - cpu0[name]) / wall for name, pid in procs.items()}
    samples = await page.evaluate("window.samples")
    presented = await page.evaluate("window.presented")
    unreadable = await page.evaluate("window.unreadable")
    decoded = await page.evaluate("window.decoded()") - decoded0
    latencies = [ms for _seq, ms in samples if ms < 60_000]
    return {"fps": decoded / wall, "presented_fps": presented / wall, "lat": latencies, "cpu": cpu,
            "unreadable": unreadable, "wall": wall}  # fmt: skip


async def _run(args: argparse.Namespace, url: str, key: str, path: str, procs: dict[str, int], shell) -> list:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    rows = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.route(f"{url}/bench", lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE))
            await page.goto(f"{url}/bench")
            await page.evaluate("([p, k]) => window.watch(p, k)", [path, key])
            async with asyncio.timeout(30):
                while await page.evaluate("window.decoded()") < 1:
                    await asyncio.sleep(0.1)

            await shell("phonefleet-sim frame-counter on --tick 0")
            await asyncio.sleep(1)
            rows.append(("still screen", 1, await _measure(page, procs, args.seconds)))

            await shell(f"phonefleet-sim frame-counter on --tick {args.tick:g}")
            await asyncio.sleep(2)
            rows.append((f"changing, {args.tick:g} Hz", 1, await _measure(page, procs, args.seconds)))

            helper = subprocess.Popen(
                [sys.executable, __file__, "--extra", url, key, path, str(args.viewers - 1), str(args.seconds + 4)],
                cwd=REPO, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert helper.stdout is not None
                line = await asyncio.to_thread(helper.stdout.readline)
                if line.strip() != "ready":
                    raise RuntimeError(f"extra viewers did not start: {line!r}")
                await asyncio.sleep(1)
                measured = await _measure(page, procs, args.seconds)
                measured["extra"] = json.loads(await asyncio.to_thread(helper.stdout.readline))
                rows.append((f"changing, {args.tick:g} Hz", args.viewers, measured))
            finally:
                helper.wait(timeout=60)
        finally:
            await browser.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tick", type=float, default=30.0, help="screen changes per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured phase")
    parser.add_argument("--viewers", type=int, default=10, help="viewers in the last phase")
    parser.add_argument("--width", type=int, default=720)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--max-width", type=int, default=720, help="webrtc.max_width (video width cap)")
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
    port = _free_port()
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
        cli = [sys.executable, "-m", "orchestrator.cli"]
        key = subprocess.run([*cli, "admin", "create-key", "--tenant", "bench", "--admin"], env=env, cwd=REPO,
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()  # fmt: skip
        device_id = asyncio.run(_register(db.url, sim.serial()))
        log = open(Path(tmp) / "api.log", "w")  # noqa: SIM115 - closed below
        api = subprocess.Popen([*cli, "--log-level", "WARNING", "api"], env=env, cwd=REPO, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            _wait_ready(url, api)
            from device_pool.driver import AdbDevice

            phone = AdbDevice(sim.serial(), adb_port=adb.port)

            async def shell(command: str) -> None:
                await phone.connect()
                await phone.shell(command, check=True)

            procs = {"api": api.pid, "phone": sim.proc.pid, "adb": adb.proc.pid}
            rows = asyncio.run(_run(args, url, key, f"/api/v1/devices/{device_id}/webrtc", procs, shell))
        finally:
            _stop(api)
            log.close()
            adb.stop()
            sim.stop()
        api_log = (Path(tmp) / "api.log").read_text()
    _report(args, rows)
    warnings = [line for line in api_log.splitlines() if "WARNING" in line or "ERROR" in line]
    if warnings:
        print(f"API log: {len(warnings)} warning/error lines, first: {warnings[0][:200]}")
    return 0


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


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not start")


def _report(args: argparse.Namespace, rows: list) -> None:  # type: ignore[type-arg]
    load = os.getloadavg()
    print(
        f"live view: phone {args.width}x{args.height} → video ≤{args.max_width} px wide, H.264 from the phone's "
        f"screenrecord; {os.cpu_count()} CPUs ({platform.machine()}), load avg {load[0]:.1f}; Python "
        f"{platform.python_version()}; viewer: headless Chromium; {args.seconds:g} s per phase"
    )
    print(f"{'phase':<20} {'viewers':>7} {'fps':>5} {'lat p50':>8} {'p95':>6} {'max':>6} "
          f"{'API CPU':>8} {'phone CPU':>9} {'adb CPU':>8} {'total':>7}")  # fmt: skip
    totals = {}
    for name, viewers, m in rows:
        cpu = m["cpu"]
        total = sum(cpu.values())
        totals[viewers] = (total, cpu["api"])
        # A still screen's pictures are old by design: their age is not a latency.
        lat = m["lat"] if name.startswith("changing") else []
        p50, p95, top = (f"{_pct(lat, 0.5):>6.0f}ms", f"{_pct(lat, 0.95):>4.0f}ms", f"{max(lat):>4.0f}ms") if lat else (
            f"{'-':>8}", f"{'-':>6}", f"{'-':>6}")  # fmt: skip
        print(
            f"{name:<20} {viewers:>7} {m['fps']:>5.1f} {p50} {p95} {top} {cpu['api'] * 100:>7.1f}% "
            f"{cpu['phone'] * 100:>8.1f}% {cpu['adb'] * 100:>7.1f}% {total * 100:>6.1f}%"
        )
        if "extra" in m:
            extra = m["extra"]
            print(f"  the other {len(extra)} viewers received {min(extra):.1f}–{max(extra):.1f} pictures/s")
    changing = [(v, m) for name, v, m in rows if name.startswith("changing")]
    if len(changing) == 2:
        (_, one), (n, many) = changing
        t1, tn = sum(one["cpu"].values()), sum(many["cpu"].values())
        print(f"{n} viewers / 1 viewer: all processes {tn / t1:.2f}x; the API alone {many['cpu']['api'] / one['cpu']['api']:.2f}x; "
              f"per extra viewer the API spends {(many['cpu']['api'] - one['cpu']['api']) / (n - 1) * 100:.1f}% of a core")  # fmt: skip
    print("CPU: share of one core, user+system, over the phase (phone = the sim process: renders and encodes)")


if __name__ == "__main__":
    sys.exit(main())
