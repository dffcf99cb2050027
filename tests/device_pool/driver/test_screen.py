"""Screenshots (raw and PNG through exec-out), screen size, settling, and black/secure frame checks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from device_pool.driver import AdbDevice, black_fraction, is_black_frame, is_secure_frame
from device_pool.driver.screenshot import parse_raw
from tests.aio import run
from tests.conditions import wait_until
from tests.conftest import Connect
from tests.processes import SimPhones


def test_screen_size_matches_the_phone(device: AdbDevice) -> None:
    assert run(device.screen_size()) == (1080, 2400)


def test_raw_and_png_screenshots_show_the_same_pixels(device: AdbDevice) -> None:
    raw = run(device.screenshot("raw"))
    png = run(device.screenshot("png"))
    assert raw.size == png.size == (1080, 2400)
    assert np.array_equal(np.asarray(raw.convert("RGB")), np.asarray(png.convert("RGB")))
    assert not is_black_frame(raw)
    assert not is_secure_frame(raw)


def test_raw_frame_has_the_android_header(device: AdbDevice) -> None:
    frame = run(device.raw_frame())
    assert (frame.width, frame.height, frame.pixel_format, frame.offset) == (1080, 2400, 1, 16)
    assert len(frame.buffer) == 16 + 1080 * 2400 * 4
    assert parse_raw(frame.buffer).same_pixels(frame)


def test_png_bytes_are_a_complete_png(device: AdbDevice) -> None:
    data = run(device.screencap_png())
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")


def test_wait_for_settle_returns_a_settled_frame_on_a_still_screen(device: AdbDevice) -> None:
    result = run(device.wait_for_settle(timeout=5, interval=0.05))
    assert result.settled
    assert result.frames >= 2
    assert result.image.size == (1080, 2400)


def test_wait_for_settle_after_a_launch_waits_out_the_starting_window(fresh_device: AdbDevice) -> None:
    run(fresh_device.launch("Settings"))
    result = run(fresh_device.wait_for_settle(timeout=10, interval=0.3))
    assert result.settled
    # The settled frame is the Settings screen itself, identical to a fresh capture.
    again = run(fresh_device.screenshot("raw"))
    assert result.image.tobytes() == again.tobytes()


def test_smaller_phone_resolution(small_phone: SimPhones, connect: Connect) -> None:
    small = connect(small_phone)
    assert run(small.screen_size()) == (720, 1600)
    assert run(small.screenshot("png")).size == (720, 1600)
    assert run(small.screenshot("raw")).size == (720, 1600)


def test_a_secure_window_captures_as_a_secure_frame(fresh_device: AdbDevice) -> None:
    """The Bank app's login screen is FLAG_SECURE: screencap shows black, as on Android."""
    run(fresh_device.launch("Bank"))
    wait_until(lambda: is_secure_frame(run(fresh_device.screenshot("raw"))), timeout=10, what="secure frame")
    assert is_secure_frame(run(fresh_device.screenshot("png")))
    run(fresh_device.key("home"))
    wait_until(lambda: not is_secure_frame(run(fresh_device.screenshot("raw"))), timeout=10, what="home")


def test_black_and_secure_frame_detection_on_synthetic_frames() -> None:
    """Pure image checks: the sim draws secure screens all black, so the partial case is built here."""
    black = Image.new("RGBA", (100, 200), (0, 0, 0, 255))
    assert is_black_frame(black) and is_secure_frame(black)
    # Android blanks only the secure layer: bars above and below still show.
    partial = black.copy()
    partial.paste((200, 200, 200, 255), (0, 0, 100, 10))
    partial.paste((30, 30, 30, 255), (0, 190, 100, 200))
    assert is_secure_frame(partial) and not is_black_frame(partial)
    # A dark theme is dark but not pure black where its text is.
    dark = Image.new("RGB", (100, 200), (18, 18, 18))
    dark.paste((230, 230, 230), (10, 90, 90, 100))
    assert not is_secure_frame(dark) and not is_black_frame(dark)
    assert 0.9 < black_fraction(dark, threshold=20) < 1.0
