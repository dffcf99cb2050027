"""Providers by name: ``build_provider(name, options)`` makes the provider ``pool.provider`` names.

The caller (``phonefleet pool``) turns its settings into ``ProviderOptions``; nothing here reads the
orchestrator's settings, so the dependency stays one way: orchestrator → device_pool. The sim's
and redroid's modules are imported only when that provider is built: a pool of virtual phones
never loads the Docker SDK.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_pool.providers.base import Provider
from device_pool.providers.registered import REGISTERED, RegisteredRows


@dataclass(frozen=True)
class ProviderOptions:
    """What the providers need from their caller; each provider reads only its own fields."""

    adb_port: int = 5037  # the adb server's port (every provider)
    count: int = 1  # phones to keep up (sim: count, redroid: min_count)
    max_count: int = 1  # most phones (sim); redroid's comes from ``redroid``
    base_port: int = 6520  # first phone port (sim, redroid)
    data_root: Path | None = None  # sim: phone data lives here
    personal_root: Path | None = None  # sim: personal phones' data lives here (one directory each)
    devices_file: Path | None = None  # static_adb: a StaticAdbConfig object or a list of StaticDevice (JSON)
    redroid: Mapping[str, Any] = field(default_factory=dict)  # redroid: RedroidConfig fields
    store: RegisteredRows | None = None  # static: where the registered rows are read


@dataclass(frozen=True)
class BuiltProvider:
    provider: Provider
    # Whether the manager may replace an unhealthy phone with a new one: only where phones are made.
    replaceable: bool


def _sim(options: ProviderOptions) -> BuiltProvider:
    from device_pool.providers.sim import SimProvider, SimProviderConfig

    if options.data_root is None:
        raise ValueError("the sim provider needs a data root for its phones")
    config = SimProviderConfig(
        data_root=options.data_root,
        personal_root=options.personal_root,
        count=options.count,
        max_count=options.max_count,
        base_port=options.base_port,
        adb_port=options.adb_port,
    )
    return BuiltProvider(SimProvider(config), replaceable=True)


def _static_adb(options: ProviderOptions) -> BuiltProvider:
    from device_pool.providers.static_adb import StaticAdbConfig, StaticAdbProvider

    if options.devices_file is None:
        raise ValueError("pool.provider is static_adb: pass --devices-file with the phones (JSON)")
    data = json.loads(Path(options.devices_file).read_text())
    if isinstance(data, list):
        data = {"devices": data}
    data.setdefault("adb_port", options.adb_port)
    # Static phones are listed, never made: an unhealthy one is retried, not replaced.
    return BuiltProvider(StaticAdbProvider(StaticAdbConfig.model_validate(data)), replaceable=False)


def _redroid(options: ProviderOptions) -> BuiltProvider:
    from device_pool.providers.redroid import RedroidConfig, RedroidProvider

    # count phones stay up on this host; the manager may grow to redroid's max_count.
    config = RedroidConfig(
        **options.redroid, min_count=options.count, base_port=options.base_port, adb_port=options.adb_port
    )
    return BuiltProvider(RedroidProvider(config), replaceable=True)


def _registered(options: ProviderOptions) -> BuiltProvider:
    from device_pool.providers.registered import RegisteredAdbProvider

    if options.store is None:
        raise ValueError(f"the {REGISTERED} provider reads registered phones from a device store")
    return BuiltProvider(RegisteredAdbProvider(options.store, adb_port=options.adb_port), replaceable=False)


PROVIDERS: Mapping[str, Callable[[ProviderOptions], BuiltProvider]] = {
    "sim": _sim,
    "static_adb": _static_adb,
    "redroid": _redroid,
    REGISTERED: _registered,
}


def build_provider(name: str, options: ProviderOptions) -> BuiltProvider:
    """The provider called ``name``; ValueError naming the known providers for any other name."""
    build = PROVIDERS.get(name)
    if build is None:
        raise ValueError(f"unknown provider {name!r}; known providers: {', '.join(sorted(PROVIDERS))}")
    return build(options)


__all__ = ["PROVIDERS", "BuiltProvider", "ProviderOptions", "build_provider"]
