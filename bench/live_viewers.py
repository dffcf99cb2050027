"""The viewers of ``bench_live.py``: headless Chromium as the measured viewer (``PAGE`` reads each
presented frame's stamp back from its pixels), aiortc peers as the extra viewers, and the phases
run against them."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.harness import tree_cpu_s

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "PAGE", "extra_viewers", "measure", "run_phases"]

REPO = Path(__file__).resolve().parent.parent
# The extra viewers run in a process of their own: bench_live.py --extra (see extra_viewers).
BENCH_LIVE = Path(__file__).with_name("bench_live.py")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns", "--no-sandbox",
    "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip

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
        for _ in range(count):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            pc.createDataChannel("control")
            await pc.setLocalDescription(await pc.createOffer())
            # A connection per viewer: with several API workers each connection may reach another.
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
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


async def measure(page, procs: dict[str, int], seconds: float) -> dict[str, object]:  # type: ignore[no-untyped-def]
    await page.evaluate("window.reset()")
    decoded0 = await page.evaluate("window.decoded()")
    cpu0 = {name: tree_cpu_s(pid) for name, pid in procs.items()}
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = {name: (tree_cpu_s(pid) - cpu0[name]) / wall for name, pid in procs.items()}
    samples = await page.evaluate("window.samples")
    presented = await page.evaluate("window.presented")
    unreadable = await page.evaluate("window.unreadable")
    decoded = await page.evaluate("window.decoded()") - decoded0
    latencies = [ms for _seq, ms in samples if ms < 60_000]
    return {"fps": decoded / wall, "presented_fps": presented / wall, "lat": latencies, "cpu": cpu,
            "unreadable": unreadable, "wall": wall}  # fmt: skip


async def run_phases(args: argparse.Namespace, url: str, key: str, path: str, procs: dict[str, int], shell, probe=None) -> list:  # type: ignore[no-untyped-def]
    """The phases; ``probe``: awaited while the last phase's viewers are still connected (its answer is
    the row's ``sharing``)."""
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
            rows.append(("still screen", 1, await measure(page, procs, args.seconds)))

            await shell(f"phonefleet-sim frame-counter on --tick {args.tick:g}")
            await asyncio.sleep(2)
            rows.append((f"changing, {args.tick:g} Hz", 1, await measure(page, procs, args.seconds)))

            if args.viewers <= 1:
                return rows
            helper = subprocess.Popen(
                [sys.executable, str(BENCH_LIVE), "--extra", url, key, path, str(args.viewers - 1), str(args.seconds + 4)],
                cwd=REPO, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert helper.stdout is not None
                line = await asyncio.to_thread(helper.stdout.readline)
                if line.strip() != "ready":
                    raise RuntimeError(f"extra viewers did not start: {line!r}")
                await asyncio.sleep(1)
                measured = await measure(page, procs, args.seconds)
                if probe is not None:
                    measured["sharing"] = await probe()
                measured["extra"] = json.loads(await asyncio.to_thread(helper.stdout.readline))
                rows.append((f"changing, {args.tick:g} Hz", args.viewers, measured))
            finally:
                helper.wait(timeout=60)
        finally:
            await browser.close()
    return rows
