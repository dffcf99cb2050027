"""The providers' branch of the error tree (the base lives in ``device_pool/errors.py``).

    PhoneFleetError
    └─ ProviderError (provider)          a provider could not do what was asked
       ├─ ProviderCapacity               it cannot make (more) phones: static phones, max_count reached
       │                                 (also a CapacityError, so the API maps it to 503)
       ├─ UnsupportedProfile             it cannot make a phone of the profile asked for
       ├─ UnknownDevice (device_id)      the serial is not one this provider has (a caller's mistake)
       └─ PhoneStartFailed (device_id)   a phone it started did not come online (exited, or not by the deadline)

Failures talking to a phone itself stay ``DeviceError`` subclasses (``DeviceOffline``, ``CommandFailed`` …):
a provider lets them through unchanged, so callers catch the level they mean.
"""

from __future__ import annotations

from typing import Any

from device_pool.errors import CapacityError, PhoneFleetError


class ProviderError(PhoneFleetError):
    """A provider could not do what was asked."""

    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        device_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        ctx = dict(context or {})
        ctx.setdefault("provider", provider)
        if device_id is not None:
            ctx.setdefault("device_id", device_id)
        super().__init__(message, context=ctx)
        self.provider = provider
        self.device_id = device_id


class ProviderCapacity(ProviderError, CapacityError):
    """The provider cannot make a phone now (sim: ``max_count`` running) or ever (static phones)."""

    code = "provider_capacity"


class UnsupportedProfile(ProviderError):
    """The provider cannot make a phone of this profile (another Android version, a missing app)."""

    code = "unsupported_profile"


class UnknownDevice(ProviderError):
    """The serial is not one this provider has: a caller's mistake, never a phone's fault."""

    code = "unknown_device"


class PhoneStartFailed(ProviderError):
    """A phone the provider started exited, or was not online by the deadline."""

    code = "phone_start_failed"
    retryable = True


class PortTaken(Exception):
    """A phone could not listen on its port: someone else took it since the port was reserved.

    Not a ProviderError: the provider catches it and tries the next port, it never reaches a caller.
    """


__all__ = [
    "PhoneStartFailed",
    "PortTaken",
    "ProviderCapacity",
    "ProviderError",
    "UnknownDevice",
    "UnsupportedProfile",
]
