"""The real Debian `adb` client against the virtual phone: the phone must be indistinguishable."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.conditions import wait_until
from tests.processes import AdbServer, SimPhones
from tests.ui import find


@pytest.fixture
def connected(adb_server: AdbServer, fresh_phone: SimPhones) -> tuple[AdbServer, str]:
    serial = fresh_phone.serial()
    adb_server.connect(serial)
    yield adb_server, serial
    adb_server.run("disconnect", serial)


def test_devices_lists_the_phone_as_device_with_its_banner(connected):
    adb, serial = connected
    out = adb.run("devices", "-l").stdout.decode()
    line = next(line for line in out.splitlines() if line.startswith(serial))
    assert line.split()[1] == "device"
    assert "model:" in line and "product:" in line and "device:" in line


def test_shell_echo_and_exit_codes(connected):
    adb, serial = connected
    res = adb.run("-s", serial, "shell", "echo", "hi")
    assert (res.returncode, res.stdout) == (0, b"hi\n")
    res = adb.run("-s", serial, "shell", "no_such_command")
    assert res.returncode == 127
    assert b"not found" in res.stderr
    res = adb.run("-s", serial, "shell", "false || echo recovered; exit 3")
    assert res.stdout == b"recovered\n" and res.returncode == 3


def test_exec_out_screencap_png_has_the_declared_size(connected):
    adb, serial = connected
    size = adb.run("-s", serial, "shell", "wm", "size").stdout.decode()
    assert size.strip() == "Physical size: 1080x2400"
    png = adb.run("-s", serial, "exec-out", "screencap", "-p").stdout
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.size == (1080, 2400)


def test_exec_out_raw_screencap_header_and_length(connected):
    adb, serial = connected
    raw = adb.run("-s", serial, "exec-out", "screencap").stdout
    width, height, fmt, _space = struct.unpack_from("<4I", raw)
    assert (width, height, fmt) == (1080, 2400, 1)
    assert len(raw) == 16 + width * height * 4


def test_push_then_pull_round_trips_1mb_byte_for_byte(connected, tmp_path: Path):
    adb, serial = connected
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(1024 * 1024))
    res = adb.run("-s", serial, "push", str(src), "/sdcard/Download/blob.bin")
    assert res.returncode == 0, res.stderr
    dst = tmp_path / "back.bin"
    res = adb.run("-s", serial, "pull", "/sdcard/Download/blob.bin", str(dst))
    assert res.returncode == 0, res.stderr
    assert dst.read_bytes() == src.read_bytes()
    listing = adb.run("-s", serial, "shell", "ls", "-l", "/sdcard/Download").stdout.decode()
    assert "blob.bin" in listing


def test_push_to_a_read_only_path_fails_like_android(connected, tmp_path: Path):
    adb, serial = connected
    src = tmp_path / "x.txt"
    src.write_text("x")
    res = adb.run("-s", serial, "push", str(src), "/system/x.txt")
    assert res.returncode != 0
    assert b"Read-only file system" in res.stderr + res.stdout


def test_pull_of_a_missing_file_fails_cleanly(connected, tmp_path: Path):
    adb, serial = connected
    res = adb.run("-s", serial, "pull", "/sdcard/nothing-here.txt", str(tmp_path / "n"))
    assert res.returncode == 1
    assert not (tmp_path / "n").exists()


def test_input_tap_changes_the_next_screenshot(connected):
    adb, serial = connected
    before = adb.run("-s", serial, "exec-out", "screencap").stdout
    focus = adb.run("-s", serial, "shell", "dumpsys window | grep mCurrentFocus").stdout.decode()
    assert "launcher" in focus.lower()
    # Find the Settings icon in the UI dump, then tap its centre.
    xml = adb.run("-s", serial, "exec-out", "uiautomator", "dump", "/dev/tty").stdout.decode()
    # Dumped to a tty, uiautomator prints its "dumped to" line after the document, as Android does.
    x, y = find(xml[: xml.rindex("</hierarchy>") + len("</hierarchy>")], text="Settings").center
    res = adb.run("-s", serial, "shell", "input", "tap", str(x), str(y))
    assert res.returncode == 0
    after = adb.run("-s", serial, "exec-out", "screencap").stdout
    assert after != before
    wait_until(
        lambda: "com.android.settings" in adb.run("-s", serial, "shell", "dumpsys", "window").stdout.decode(),
        timeout=5,
        what="Settings in front",
    )


def test_factory_reset_over_adb_restores_the_seeded_state(connected):
    adb, serial = connected

    def sh(cmd: str) -> str:
        return adb.run("-s", serial, "shell", cmd).stdout.decode()

    fresh_contacts = sh("content query --uri content://contacts/phones")
    fresh_frame = adb.run("-s", serial, "exec-out", "screencap").stdout
    sh(
        "settings put global wifi_on 0; touch /sdcard/Download/left-behind.txt; am start -n com.android.settings/.Settings"
    )
    assert sh("settings get global wifi_on").strip() == "0"
    assert sh("phonefleet-sim factory-reset").strip() == "Factory reset complete"
    assert sh("settings get global wifi_on").strip() == "1"
    assert "left-behind" not in sh("ls /sdcard/Download")
    assert sh("content query --uri content://contacts/phones") == fresh_contacts
    assert adb.run("-s", serial, "exec-out", "screencap").stdout == fresh_frame
