"""Providers by name: the registry builds each provider ``phonefleet pool`` may name, and refuses others."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_pool.providers.registered import REGISTERED
from device_pool.providers.registry import PROVIDERS, ProviderOptions, build_provider
from device_pool.providers.sim import SimProvider
from device_pool.providers.static_adb import StaticAdbProvider


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider 'cuttlefish'") as raised:
        build_provider("cuttlefish", ProviderOptions())
    for name in ("redroid", "sim", "static", "static_adb"):
        assert name in str(raised.value)
    assert set(PROVIDERS) == {"redroid", "sim", "static", "static_adb"}


def test_sim_is_built_from_options_and_may_replace_phones(tmp_path: Path) -> None:
    built = build_provider("sim", ProviderOptions(data_root=tmp_path, count=2, max_count=3, base_port=7100))
    assert isinstance(built.provider, SimProvider) and built.replaceable
    config = built.provider.config
    assert (config.data_root, config.count, config.max_count, config.base_port) == (tmp_path, 2, 3, 7100)


def test_static_adb_reads_its_devices_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--devices-file"):
        build_provider("static_adb", ProviderOptions())
    devices = tmp_path / "devices.json"
    devices.write_text('[{"serial": "127.0.0.1:7200"}]')
    built = build_provider("static_adb", ProviderOptions(devices_file=devices, adb_port=5099))
    assert isinstance(built.provider, StaticAdbProvider) and not built.replaceable
    assert [d.serial for d in built.provider.config.devices] == ["127.0.0.1:7200"]
    assert built.provider.config.adb_port == 5099


def test_registered_phones_need_a_store() -> None:
    # Built with the pool's DeviceStore by `phonefleet pool` (tests/device_pool/pool/test_pool_command.py).
    with pytest.raises(ValueError, match="device store"):
        build_provider(REGISTERED, ProviderOptions())
