"""AdbDevice.shell / exec_out over the real adb server to the virtual phone: output, exit codes, errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import CommandFailed, DeviceTimeout
from tests.aio import phone_has_file, run, until
from tests.processes import SimPhones


def test_shell_separates_stdout_stderr_and_exit_code(device: AdbDevice) -> None:
    out = run(device.shell("echo out; echo err >&2; exit 3"))
    assert (out.stdout, out.stderr, out.exit_code) == ("out\n", "err\n", 3)
    assert not out.ok


def test_shell_check_raises_command_failed_with_context(device: AdbDevice) -> None:
    with pytest.raises(CommandFailed) as info:
        run(device.shell("ls /no/such/dir", check=True))
    err = info.value
    assert err.exit_code != 0
    assert err.command == "ls /no/such/dir"
    assert err.device_id == device.serial
    assert "No such file" in err.output
    assert err.context["device_id"] == device.serial


def test_shell_passes_unicode_and_quotes(device: AdbDevice) -> None:
    out = run(device.shell("echo '设置 \"quoted\" $HOME'"))
    assert out.stdout == '设置 "quoted" $HOME\n'


def test_legacy_shell_still_reports_exit_codes(sim_phone: SimPhones, connect) -> None:
    """Phones without shell_v2 (old Android) get a marker appended; exit codes still come back."""
    legacy = connect(sim_phone, shell_protocol="legacy")
    out = run(legacy.shell("echo -n partial-line-without-newline; exit 4"))
    assert out.exit_code == 4
    assert out.stdout == "partial-line-without-newline"
    assert run(legacy.shell("echo hi")).stdout == "hi\n"


def test_exec_out_is_binary_clean(device: AdbDevice) -> None:
    payload = bytes(range(256)) * 300
    path = f"/data/local/tmp/binary-{time.monotonic_ns()}"
    run(device.push(payload, path))
    assert run(device.exec_out(f"cat {path}")) == payload


def test_timeout_shorter_than_the_command_raises_device_timeout(device: AdbDevice) -> None:
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as info:
        run(device.shell("sleep 2", timeout=0.5))
    assert time.monotonic() - started < 1.5
    assert info.value.command == "sleep 2"
    assert info.value.retryable
    # The stream was closed, not the phone: the next command works.
    assert run(device.shell("echo alive")).stdout == "alive\n"


def test_cancelling_a_call_returns_at_once_and_leaves_the_phone_usable(
    device: AdbDevice, sim_phone: SimPhones
) -> None:
    marker = f"running-{time.monotonic_ns()}"

    async def scenario() -> float:
        task = asyncio.create_task(device.shell(f"touch /data/local/tmp/{marker} && sleep 5"))
        await until(phone_has_file(sim_phone.data_root, marker), what="the command runs on the phone")
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert run(scenario()) < 0.5
    assert run(device.shell("echo alive")).stdout == "alive\n"


def test_features_include_shell_v2(device: AdbDevice) -> None:
    assert "shell_v2" in run(device.features())
    assert run(device.state()) == "device"
