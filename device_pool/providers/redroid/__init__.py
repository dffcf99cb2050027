"""redroid phones: containers on a Docker engine (``provider``), what they are made of (``config``),
the engine calls (``engine``), personal phones' volumes as archives (``volumes``), the host check (``host``) and the tests' stand-in for redroid's
``/init`` (``standin``, run as ``python -m device_pool.providers.redroid.standin``).

Each name loads its module on first use: reading ``RedroidConfig`` does not load the ADB driver.
"""

from device_pool.exports import lazy_exports

_EXPORTS = {
    "RedroidConfig": "device_pool.providers.redroid.config",
    "ADB_KEYBOARD_PACKAGE": "device_pool.providers.redroid.provider",
    "RedroidProvider": "device_pool.providers.redroid.provider",
    "PersonalVolumes": "device_pool.providers.redroid.volumes",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
