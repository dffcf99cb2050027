"""The device pool: leases on the database rows (``leases``) and the manager that keeps phones ready (``manager``).

This package may use the control plane's models through ``orchestrator.db`` (and nothing else of
the orchestrator, never the worker); the providers below it stay free of the orchestrator. Each name
loads its module on first use: a reader of ``DRAIN_LABEL`` does not start the providers and driver.
"""

from device_pool.exports import lazy_exports

_EXPORTS = {
    "AdbRestart": "device_pool.pool.adb_supervisor",
    "AdbServerSupervisor": "device_pool.pool.adb_supervisor",
    "CapacityError": "device_pool.errors",
    "NoDeviceAvailable": "device_pool.errors",
    "DeviceRecord": "device_pool.pool.devices",
    "DeviceStore": "device_pool.pool.devices",
    "DEVICE_ERROR": "device_pool.pool.leases",
    "DRAIN_LABEL": "device_pool.pool.leases",
    "EXPIRED": "device_pool.pool.leases",
    "POOL_LABEL": "device_pool.pool.leases",
    "EndedLease": "device_pool.pool.leases",
    "LeaseGrant": "device_pool.pool.leases",
    "LeaseStore": "device_pool.pool.leases",
    "end_leases_held_by": "device_pool.pool.leases",
    "profile_matches": "device_pool.pool.leases",
    "PoolManager": "device_pool.pool.manager",
    "PersonalGrant": "device_pool.pool.personal",
    "PersonalPhoneKeeper": "device_pool.pool.personal_keeper",
    "PersonalPhoneLeases": "device_pool.pool.personal",
    "IDLE": "device_pool.pool.signals",
    "LocalSignal": "device_pool.pool.signals",
    "RELEASED": "device_pool.pool.signals",
    "RedisSignal": "device_pool.pool.signals",
    "Signal": "device_pool.pool.signals",
    "signal_for": "device_pool.pool.signals",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
