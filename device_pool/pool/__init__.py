"""The device pool: leases on the database rows (``leases``) and the manager that keeps phones ready (``manager``).

This package may use the control plane's models through ``orchestrator.db`` (and nothing else of
the orchestrator); the providers below it stay free of the orchestrator.
"""

from device_pool.errors import CapacityError, NoDeviceAvailable
from device_pool.pool.devices import DeviceRecord, DeviceStore
from device_pool.pool.leases import DRAIN_LABEL, EXPIRED, EndedLease, LeaseGrant, LeaseStore, profile_matches
from device_pool.pool.manager import PoolManager
from device_pool.pool.registered import REGISTERED, RegisteredAdbProvider
from device_pool.pool.signals import IDLE, RELEASED, LocalSignal, RedisSignal, Signal, signal_for

__all__ = [
    "DRAIN_LABEL",
    "EXPIRED",
    "IDLE",
    "REGISTERED",
    "RELEASED",
    "CapacityError",
    "DeviceRecord",
    "DeviceStore",
    "EndedLease",
    "LeaseGrant",
    "LeaseStore",
    "LocalSignal",
    "NoDeviceAvailable",
    "PoolManager",
    "RedisSignal",
    "RegisteredAdbProvider",
    "Signal",
    "profile_matches",
    "signal_for",
]
