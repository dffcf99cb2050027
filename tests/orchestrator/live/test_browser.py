"""A real browser watches a phone: headless Chromium negotiates with the API and decodes the video.

The page is served from the API's own origin (Playwright answers one path of it), as the dashboard
will be, so its ``fetch`` is same-origin. Chromium needs ``--allow-loopback-in-peer-connection`` to
offer 127.0.0.1, and mDNS host names off, so its candidates are addresses the API can reach.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.orchestrator.live.conftest import VIDEO, lease_phone, ticking_phone
from tests.processes import SimPhones

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

PAGE = """<!doctype html><meta charset="utf-8"><title>live view smoke test</title><body>
<script type="module">
window.watch = async (path, key) => {
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  const control = pc.createDataChannel("control");
  window.hello = null;
  control.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === "hello") window.hello = m; };
  const video = document.createElement("video");
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.append(video);
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === "complete") return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && done();
  });
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
    Authorization: "Bearer " + key}, body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp})});
  if (!response.ok) throw new Error(await response.text());
  await pc.setRemoteDescription(await response.json());
  window.pc = pc; window.video = video;
};
window.decoded = async () => {
  let frames = 0;
  (await window.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames = s.framesDecoded || 0;
  });
  return {frames, width: window.video.videoWidth, height: window.video.videoHeight,
          state: window.pc.connectionState, hello: window.hello};
};
</script>"""


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Chromium is not installed at /usr/bin/chromium")
def test_headless_chromium_negotiates_and_decodes_the_phone(live_api: Api, live_phone: SimPhones, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    caller = live_api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port, hz=0)  # a still screen
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased,
            playwright_api.async_playwright() as pw,
        ):
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.route(f"{live_api.url}/live-test", lambda route: route.fulfill(
                    status=200, content_type="text/html", body=PAGE))  # fmt: skip
                await page.goto(f"{live_api.url}/live-test")
                await page.evaluate(
                    "([path, key]) => window.watch(path, key)",
                    [f"/api/v1/devices/{leased.device_id}/webrtc", caller.key],
                )
                async with asyncio.timeout(30):
                    while (stats := await page.evaluate("window.decoded()"))["frames"] < 1 or not stats["hello"]:
                        await asyncio.sleep(0.1)
                # Even a still screen shows at once: a browser completes a picture on its last
                # packet (RTP marker), and the stream hands a joiner the current picture.
                assert stats["state"] == "connected"
                assert (stats["width"], stats["height"]) == VIDEO
                assert stats["hello"]["video"] == {"width": VIDEO[0], "height": VIDEO[1]}
                await page.screenshot(path=str(tmp_path / "live-view.png"))
            finally:
                await browser.close()

    run(scenario())
