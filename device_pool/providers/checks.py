"""Checks every provider runs over ADB: the health probe and waiting for the launcher after a reset."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from device_pool.driver.device import AdbDevice
from device_pool.errors import DeviceError, DeviceTimeout
from device_pool.providers.base import DeviceProfile, Health

logger = logging.getLogger(__name__)

DEFAULT_LAUNCHER = "com.android.launcher3"  # AOSP's launcher: redroid's and the virtual phone's
_POLL_S = 0.05


async def probe(device: AdbDevice, profile: DeviceProfile, *, timeout: float) -> Health:
    """adb state ``device``, a shell echo round trip, then ``wm size`` against the profile; never raises DeviceError."""
    latency_ms: float | None = None
    try:
        # One deadline for the whole probe: a hung phone must not hold the health sweep longer.
        async with asyncio.timeout(timeout):
            state = await device.state(timeout=timeout)
            if state != "device":
                return Health(False, f"adb state is {state!r}, not 'device'")
            nonce = secrets.token_hex(6)
            started = time.perf_counter()
            out = await device.shell(f"echo {nonce}", timeout=timeout)
            latency_ms = (time.perf_counter() - started) * 1000
            if out.exit_code != 0 or out.stdout.strip() != nonce:
                return Health(False, f"echo answered {out.output[:200]!r} (exit {out.exit_code})", latency_ms)
            size = await device.screen_size(timeout=timeout)
            if size != (profile.width, profile.height):
                detail = f"screen is {size[0]}x{size[1]}, profile says {profile.width}x{profile.height}"
                return Health(False, detail, latency_ms)
    except TimeoutError:
        return Health(False, f"no answer within {timeout:g} s", latency_ms)
    except DeviceError as exc:
        return Health(False, f"{exc.code}: {exc.message}", latency_ms)
    return Health(True, "ok", latency_ms)


async def wait_for_launcher(device: AdbDevice, launcher: str, *, timeout: float) -> None:
    """Poll the foreground until ``launcher`` is in front; DeviceTimeout at the deadline."""
    deadline = time.monotonic() + timeout
    last = "nothing read yet"
    while True:
        remaining = deadline - time.monotonic()
        try:
            package, activity = await device.foreground(timeout=max(remaining, 0.5))
            if package == launcher:
                return
            last = f"{package}/{activity}"
        except DeviceError as exc:
            # A phone mid-reset may answer dumpsys with no focused window for a moment.
            last = f"{exc.code}: {exc.message}"
        if time.monotonic() >= deadline:
            raise DeviceTimeout(
                f"{device.serial}: launcher {launcher} not in front within {timeout:g} s (last: {last})",
                device_id=device.serial,
                command="dumpsys window",
                output=last,
            )
        await asyncio.sleep(_POLL_S)


async def go_home(device: AdbDevice, launcher: str, *, timeout: float) -> None:
    """Press HOME and wait until the launcher is in front."""
    await device.key("home", timeout=timeout)
    await wait_for_launcher(device, launcher, timeout=timeout)
    logger.debug("launcher in front", extra={"serial": device.serial})


__all__ = ["DEFAULT_LAUNCHER", "go_home", "probe", "wait_for_launcher"]
