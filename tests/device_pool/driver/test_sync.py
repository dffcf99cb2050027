"""pull/push through the phone's sync service, over the real adb server."""

from __future__ import annotations

import os
import time

import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import CommandFailed
from tests.aio import run


def _unique(name: str) -> str:
    return f"/sdcard/Download/driver-tests/{time.monotonic_ns()}/{name}"


def test_push_then_pull_round_trips_bytes_across_many_chunks(device: AdbDevice) -> None:
    payload = os.urandom(300_000)  # several 64 KiB DATA chunks each way
    path = _unique("blob.bin")
    run(device.push(payload, path))
    assert run(device.pull(path)) == payload
    assert run(device.shell(f"wc -c < {path}")).stdout.strip() == str(len(payload))


def test_push_empty_file_and_unicode_path(device: AdbDevice) -> None:
    path = _unique("笔记 one.txt")
    run(device.push(b"", path))
    assert run(device.pull(path)) == b""


def test_pull_missing_file_raises_command_failed(device: AdbDevice) -> None:
    with pytest.raises(CommandFailed) as info:
        run(device.pull("/sdcard/definitely/not/here.txt"))
    assert info.value.device_id == device.serial
    assert info.value.command == "pull /sdcard/definitely/not/here.txt"


def test_push_to_read_only_location_raises_command_failed(device: AdbDevice) -> None:
    with pytest.raises(CommandFailed) as info:
        run(device.push(b"x", "/system/driver-test.txt"))
    assert "Read-only" in info.value.output or "Permission" in info.value.output
