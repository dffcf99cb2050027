"""Providers: where phones come from (virtual phones, static ADB phones), behind one ``Provider`` protocol."""

from device_pool.providers.base import DeviceProfile, DeviceSpec, Health, Provider
from device_pool.providers.errors import (
    PhoneStartFailed,
    ProviderCapacity,
    ProviderError,
    UnknownDevice,
    UnsupportedProfile,
)
from device_pool.providers.sim import SIM_ANDROID, SimProvider, SimProviderConfig
from device_pool.providers.static_adb import StaticAdbConfig, StaticAdbProvider, StaticDevice

__all__ = [
    "SIM_ANDROID",
    "DeviceProfile",
    "DeviceSpec",
    "Health",
    "PhoneStartFailed",
    "Provider",
    "ProviderCapacity",
    "ProviderError",
    "SimProvider",
    "SimProviderConfig",
    "StaticAdbConfig",
    "StaticAdbProvider",
    "StaticDevice",
    "UnknownDevice",
    "UnsupportedProfile",
]
