"""50 tasks over 5 virtual phones, every part a real process: ``phonefleet api`` over HTTP, ``phonefleet
pool`` (sim provider, 5 phones), one ``phonefleet worker`` with 5 threads, the reference model in
scripted mode, PostgreSQL and Redis.

The model is scripted (Launch Settings → tap the Wi-Fi switch → finish) so the test measures the
fleet, not OCR. Each task changes its phone (it turns Wi-Fi off and leaves Settings in front); the
screenshots of the next task on that phone show the launcher, then Settings with Wi-Fi on again:
the factory state, so the phone was reset between the two tasks.
"""

from __future__ import annotations

import collections
import itertools
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from device_pool.sim.phone import PhoneConfig, VirtualPhone
from tests.conditions import wait_until
from tests.system.conftest import FINAL, Fleet

TASKS = 50
PHONES = 5
SETTINGS = "com.android.settings"


def wifi_switch() -> tuple[int, int, int, int]:
    """The Wi-Fi switch's bounds on Settings' first screen, from the virtual phone's own view tree
    (the pool's phones are the provider's default 1080x2400 ones)."""
    with tempfile.TemporaryDirectory() as data:
        phone = VirtualPhone(Path(data), PhoneConfig(launch_delay_ms=0))
        phone.start_activity(package=SETTINGS)
        view = phone.find(rid=f"{SETTINGS}:id/switch_wifi")
        assert view is not None and view.checked, "factory Wi-Fi is on"
        return view.bounds


def switch_is_on(image: Image.Image, bounds: tuple[int, int, int, int]) -> bool:
    """A switch's track is blue-ish when on and mid-grey when off (the reference model reads it so too)."""
    pixels = np.asarray(image.crop(bounds), dtype=np.int32)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    blue = int(((b - r > 80) & (b > 150)).sum())
    grey = int(((abs(r - g) < 14) & (abs(g - b) < 14) & (r > 160) & (r < 214)).sum())
    assert max(blue, grey) > 200, f"no switch track at {bounds} (blue {blue}, grey {grey} pixels)"
    return blue > grey


def test_fifty_tasks_over_five_phones(start_fleet) -> None:
    fleet: Fleet = start_fleet(PHONES)
    bounds = wifi_switch()
    x, y = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    model = fleet.start_model([
        'do(action="Launch", app="Settings")',
        f'do(action="Tap", element=[{round(x * 1000 / 1080)}, {round(y * 1000 / 2400)}])',
        'finish(message="Wi-Fi toggled")',
    ])  # fmt: skip
    fleet.start_worker(model.base_url, concurrency=PHONES)

    started = time.monotonic()
    ids = [
        fleet.submit("Open Settings and toggle Wi-Fi", max_steps=5, timeout_s=300)["id"] for _ in range(TASKS)
    ]
    submitted_s = time.monotonic() - started

    def all_final() -> list[dict] | None:
        tasks = [t for t in fleet.tasks() if t["id"] in ids]
        return tasks if all(t["status"] in FINAL for t in tasks) else None

    try:
        tasks = wait_until(all_final, timeout=240, interval=0.5, what=f"{TASKS} tasks final")
    except TimeoutError:
        counts = collections.Counter(t["status"] for t in fleet.tasks())
        raise AssertionError(f"not all final: {counts}\n{fleet.tails()}") from None
    elapsed_s = time.monotonic() - started
    failed = [(t["id"], t["status"], t["reason"], t["message"]) for t in tasks if t["status"] != "succeeded"]
    assert not failed, f"{failed}\n{fleet.tails()}"
    assert all(t["attempts"] == 1 for t in tasks), [t["attempts"] for t in tasks]

    # The lease log: one lease per task, released by its worker; no phone ever held twice at once.
    leases = [lease for lease in fleet.leases() if str(lease.task_id) in ids]
    assert len(leases) == TASKS and all(lease.release_reason == "released" for lease in leases), leases
    by_device: dict[uuid.UUID, list] = collections.defaultdict(list)
    for lease in leases:
        by_device[lease.device_id].append(lease)
    for device_leases in by_device.values():
        device_leases.sort(key=lambda lease: lease.acquired_at)
        for before, after in itertools.pairwise(device_leases):
            assert before.released_at <= after.acquired_at, (before, after)
    # The fleet was used as a fleet: every phone ran tasks, and all five were busy at once.
    assert len(by_device) == PHONES and min(map(len, by_device.values())) >= 2, {
        d: len(v) for d, v in by_device.items()
    }
    edges = sorted(
        [(lease.acquired_at, 1) for lease in leases] + [(lease.released_at, -1) for lease in leases]
    )
    peak = max(np.cumsum([delta for _, delta in edges]))
    assert peak == PHONES, f"at most {peak} phones leased at once"

    # Each task saw its phone in factory state, although the task before it on that phone left
    # Settings in front with Wi-Fi off.
    for device_leases in by_device.values():
        for lease in device_leases:
            steps = fleet.steps(str(lease.task_id))
            assert [s["action"]["name"] for s in steps] == ["Launch", "Tap", "finish"], steps
            assert steps[0]["current_app"] == "Home screen", steps[0]  # not the Settings it was left in
            assert switch_is_on(fleet.screenshot(steps[1]), bounds), (
                f"task {lease.task_id} began with Wi-Fi off"
            )
            assert not switch_is_on(fleet.screenshot(steps[2]), bounds), f"task {lease.task_id} left Wi-Fi on"
            assert steps[2]["current_app"] == "Settings", steps[2]

    # Every phone is idle again after its last reset.
    wait_until(lambda: len(fleet.devices("idle")) == PHONES, timeout=30, what="all phones idle again")
    busy = [(lease.released_at - lease.acquired_at).total_seconds() for lease in leases]
    print(
        f"\n{TASKS} tasks on {PHONES} phones: submitted in {submitted_s:.2f} s, all succeeded in {elapsed_s:.1f} s; "
        f"leases per phone {sorted(map(len, by_device.values()))}, lease held p50 {np.median(busy):.2f} s, "
        f"max {max(busy):.2f} s; peak {peak} phones leased at once"
    )
