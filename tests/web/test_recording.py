"""A task's recording (docs/recordings.md), end to end on the real fleet: the worker records the virtual
phone's own H.264 while the agent works, with no viewer connected; once the task has ended the API
serves a decodable MP4 (whole, and by range), to the task's tenant only, and puts it in the trajectory
zip; the task page plays it in headless Chromium, and a click on step N seeks it to step N's screen
(the video's frame there, drawn to a canvas, matches step N's screenshot and not the other steps')."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.aio import run
from tests.system.conftest import _member_key
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet

# Home screen, Settings, home screen again: step 1's screen differs strongly from steps 0 and 2.
SCRIPT = ['do(action="Launch", app="Settings")', 'do(action="Home")', 'finish(message="Looked at Settings")']
THUMB = (36, 80)  # both pictures are compared at this size, in grey levels

# The video's current frame, drawn into a small canvas, as grey levels (0–255), row by row.
_GRAB = """([w, h]) => {
  const video = document.getElementById("task-recording");
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(video, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const grey = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push(Math.round((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3));
  return grey;
}"""


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize(THUMB, Image.Resampling.BILINEAR), dtype=np.float64)


@pytest.mark.timeout(300)
def test_a_task_is_recorded_served_and_seeked_from_its_timeline(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)
    model = fleet.start_model(SCRIPT)
    fleet.start_worker(model.base_url)
    task_id = fleet.submit("Open Settings, then go home", max_steps=5)["id"]
    task = fleet.wait_status(task_id, ("succeeded",), timeout=120)
    steps = fleet.steps(task_id)
    assert len(steps) == len(SCRIPT), steps
    offsets = [step["timings"].get("video_ms") for step in steps]
    assert all(isinstance(ms, int) for ms in offsets), offsets
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), offsets

    # Ready as soon as the task's end is visible: the whole MP4, decodable, as long as the run.
    whole = fleet.http.get(f"/api/v1/tasks/{task_id}/recording")
    assert whole.status_code == 200, whole.text
    assert whole.headers["content-type"] == "video/mp4"
    video = whole.content
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = list(container.decode(stream))
        duration_s = float(container.duration or 0) / 1_000_000
    assert frames and frames[0].width > 0, "no picture decoded"
    assert offsets[-1] / 1000 < duration_s < task["result"]["elapsed_s"] + 10, (offsets, duration_s, task["result"])

    # Ranges: the bytes asked for, and where they are.
    part = fleet.http.get(f"/api/v1/tasks/{task_id}/recording", headers={"Range": "bytes=100-299"})
    assert part.status_code == 206, part.text
    assert part.content == video[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(video)}"

    # Another tenant does not see it; the trajectory zip carries it.
    other = httpx.Client(base_url=fleet.url, headers={"Authorization": f"Bearer {run(_member_key(fleet.db_url))}"})
    with other:
        assert other.get(f"/api/v1/tasks/{task_id}/recording").status_code == 404
    archive = fleet.http.get(f"/api/v1/tasks/{task_id}/trajectory")
    assert archive.status_code == 200, archive.text
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.read("recording.mp4") == video

    screens = [_thumb(fleet.screenshot(step)) for step in steps]
    # The test needs screens that differ: Settings is far from the home screen.
    assert np.abs(screens[1] - screens[0]).mean() > 20, "step 1's screen looks like step 0's"

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts)
            page = tab.page
            await tab.login(fleet.key)
            await tab.goto(f"#/tasks/{task_id}")
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "succeeded", timeout=15 * S)
            await expect(page.locator("#steps li.step")).to_have_count(len(SCRIPT), timeout=15 * S)
            await page.wait_for_function(
                "() => { const v = document.getElementById('task-recording'); return v && v.readyState >= 1 && v.duration > 0; }",
                timeout=15 * S,
            )
            for index in (1, 0, 2, 1):
                step = page.locator(f'#steps li.step[data-index="{index}"]')
                await step.locator(".step-head").click()
                await page.wait_for_function(
                    "(s) => { const v = document.getElementById('task-recording');"
                    " return !v.seeking && v.readyState >= 2 && Math.abs(v.currentTime - s) < 0.002; }",
                    arg=offsets[index] / 1000, timeout=10 * S,
                )
                await expect(step).to_have_class(re.compile(r"\bplaying\b"))
                shown = np.asarray(await page.evaluate(_GRAB, list(THUMB)), dtype=np.float64).reshape(THUMB[1], THUMB[0])
                distances = [float(np.abs(shown - screen).mean()) for screen in screens]
                await tab.shot(f"seek-step-{index}")
                assert distances[index] < 12, f"step {index}: the video differs from its screenshot {distances}"
                unlike = [j for j, screen in enumerate(screens) if np.abs(screen - screens[index]).mean() > 20]
                assert unlike and all(distances[index] < distances[j] for j in unlike), f"step {index}: {distances}"
            # And it plays (muted, so headless Chromium allows it).
            await page.evaluate("() => { const v = document.getElementById('task-recording'); v.currentTime = 0; return v.play(); }")
            await page.wait_for_function(
                "() => { const v = document.getElementById('task-recording'); return v.currentTime > 0.2 || v.ended; }",
                timeout=15 * S,
            )
            assert tab.errors == [], tab.errors

    run(scenario())
