"""Providers: where phones come from (virtual phones, static ADB phones, registered phones, redroid),
behind one ``Provider`` protocol.

Each name loads its module on first use: a reader of ``DeviceProfile`` does not load the driver.
"""

from device_pool.exports import lazy_exports

_EXPORTS = {
    "DeviceProfile": "device_pool.providers.base",
    "DeviceSpec": "device_pool.providers.base",
    "Health": "device_pool.providers.base",
    "Provider": "device_pool.providers.base",
    "PhoneStartFailed": "device_pool.providers.errors",
    "ProviderCapacity": "device_pool.providers.errors",
    "ProviderError": "device_pool.providers.errors",
    "UnknownDevice": "device_pool.providers.errors",
    "UnsupportedProfile": "device_pool.providers.errors",
    "REGISTERED": "device_pool.providers.registered",
    "RegisteredAdbProvider": "device_pool.providers.registered",
    "SIM_ANDROID": "device_pool.providers.sim",
    "SimProvider": "device_pool.providers.sim",
    "SimProviderConfig": "device_pool.providers.sim",
    "StaticAdbConfig": "device_pool.providers.static_adb",
    "StaticAdbProvider": "device_pool.providers.static_adb",
    "StaticDevice": "device_pool.providers.static_adb",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
