"""RedroidProvider against a real Docker engine (a private dockerd) and the real adb server, alone
and under the pool manager (`phonefleet pool`, a personal phone's sleep and wake).

No redroid image can be pulled here and the kernel has no binder, so the phones are a stand-in image
made with the engine's import (tests/dockerd.py): its ``/init`` is our virtual phone, reading redroid's
boot arguments and keeping its state on the ``/data`` volume. Everything else is the provider's
real path: containers, volumes, labels, limits, ADB boot checks, the keyboard, reset by recreation
and reaping. Two settings differ from production, each because this sandbox cannot do it:
``check_host=False`` (no binder here; the check itself is tested below) and ``privileged=False``
(this machine's capability bounding set lacks CAP_SYS_RESOURCE, so a privileged container cannot
start; the stand-in needs no privileges). Host networking with a port per phone, because dockerd
runs with ``--bridge=none``. Skipped only where dockerd cannot start, with the reason.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device_pool.driver import ADB_KEYBOARD_IME, AdbDevice
from device_pool.providers import (
    DeviceProfile,
    ProviderCapacity,
    ProviderError,
    UnknownDevice,
    UnsupportedProfile,
)
from device_pool.providers.redroid import RedroidConfig, RedroidProvider
from device_pool.providers.redroid.config import (
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_PERSONAL,
    LABEL_POOL,
    LABEL_PORT,
    LABEL_ROLE,
)
from device_pool.providers.redroid.engine import put_archive
from device_pool.providers.redroid.host import HostFacts, HostUnsupported, host_problems
from orchestrator.db import PersonalPhone
from orchestrator.services.phone_archives import archive_cipher, export_key
from tests.aio import run
from tests.conditions import GiveUp, wait_until
from tests.conftest import ReservePorts
from tests.databases import device_serial, migrate_to_head, open_sessions, sqlite_url
from tests.dockerd import (
    STANDIN,
    Dockerd,
    DockerdUnavailable,
    build_standin_image,
    standin_mounts,
    standin_settings,
    start_dockerd,
)
from tests.orchestrator.conftest import start_api  # noqa: F401  (a fixture, reused)
from tests.processes import REPO, AdbServer, stop_process

MakeProvider = Callable[..., RedroidProvider]


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    try:
        daemon = start_dockerd()
    except DockerdUnavailable as exc:
        print(f"\nredroid tests skipped: {exc}", file=sys.stderr)
        pytest.skip(f"dockerd cannot start here: {exc}")
    try:
        build_standin_image(daemon.url, STANDIN)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def docker_client(dockerd: Dockerd) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=dockerd.url, timeout=30)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def make_provider(
    dockerd: Dockerd, adb_server: AdbServer, reserve_ports: ReservePorts
) -> Iterator[MakeProvider]:
    providers: list[RedroidProvider] = []

    def make(**overrides: Any) -> RedroidProvider:
        max_count = overrides.pop("max_count", 2)
        fields = standin_settings(dockerd.url, overrides.pop("pool_id", f"t{uuid.uuid4().hex[:8]}"))
        fields.update(max_count=max_count, base_port=reserve_ports(max_count), adb_port=adb_server.port)
        provider = RedroidProvider(RedroidConfig(**{**fields, **overrides}))
        providers.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in providers:
            run(provider.close())


def ours(client: Any, pool_id: str) -> tuple[list[str], list[str]]:
    """(container names, volume names) labelled as this pool's."""
    filters = {"label": [f"{LABEL_MANAGED}=true", f"{LABEL_POOL}={pool_id}"]}
    containers = sorted(c.name for c in client.containers.list(all=True, filters=filters))
    return containers, sorted(v.name for v in client.volumes.list(filters=filters))


def data_volume(container: Any) -> str:
    return next(m["Name"] for m in container.attrs["Mounts"] if m["Destination"] in ("/data", "/data-diff"))


async def _dirty(phone: AdbDevice) -> None:
    """What a user leaves behind: a setting, a downloaded file."""
    await phone.shell("settings put global pf_marker previous-user", check=True)
    await phone.push(b"the previous user's secret", "/sdcard/Download/secret.txt")


async def _view(phone: AdbDevice) -> tuple[str, str, str]:
    """(pf_marker setting, listing of /sdcard/Download, the selected keyboard)."""
    marker = await phone.shell("settings get global pf_marker", check=True)
    listing = await phone.shell("ls /sdcard/Download")
    ime = await phone.shell("settings get secure default_input_method", check=True)
    return marker.stdout.strip(), listing.stdout, ime.stdout.strip()


# --- host requirements ---------------------------------------------------------------------------


def test_host_problems_name_what_is_missing_and_how_to_fix_it() -> None:
    config = RedroidConfig()
    bare = HostFacts("Linux", "6.1.0-18-amd64", "nodev\tproc\n", "", frozenset(), 4096)
    (problem,) = host_problems(bare, config)
    assert "binder" in problem and "modprobe binder_linux" in problem
    binderfs = HostFacts("Linux", "6.1.0-18-amd64", "nodev\tbinder\n", "", frozenset(), 4096)
    assert host_problems(binderfs, config) == []
    devices = HostFacts(
        "Linux", "5.4.0", "", "", frozenset({"/dev/binder", "/dev/hwbinder", "/dev/vndbinder"}), 4096
    )
    assert host_problems(devices, config) == []
    old = HostFacts("Linux", "4.9.0", "nodev\tbinder\n", "", frozenset(), 16384)
    assert [p.split(" ")[0] for p in host_problems(old, config)] == ["kernel", "page"]
    assert "ashmem" in host_problems(binderfs, RedroidConfig(use_memfd=False))[0]
    assert "/dev/dri" in host_problems(binderfs, RedroidConfig(gpu_mode="host"))[0]
    assert "Linux" in host_problems(HostFacts("Darwin", "23.0", "", "", frozenset(), 16384), config)[0]


def test_start_refuses_a_host_without_binder(make_provider: MakeProvider, docker_client: Any) -> None:
    provider = make_provider(check_host=True)
    if not host_problems(HostFacts.read(), provider.config):
        pytest.skip("this host has binder: the refusal cannot be shown here")
    with pytest.raises(HostUnsupported, match="binder") as caught:
        run(provider.start())
    assert "docs/deploy.md" in caught.value.message
    assert ours(docker_client, provider.config.pool_id) == ([], []), "no container before the check passes"


def test_pool_command_explains_a_host_without_binder(
    dockerd: Dockerd, adb_server: AdbServer, tmp_path: Path
) -> None:
    if not host_problems(HostFacts.read(), RedroidConfig()):
        pytest.skip("this host has binder: the refusal cannot be shown here")
    env = {**os.environ, "PHONEFLEET_DATA_DIR": str(tmp_path), "PHONEFLEET_POOL__PROVIDER": "redroid",
           "PHONEFLEET_POOL__REDROID__DOCKER_URL": dockerd.url, "PHONEFLEET_POOL__REDROID__POOL_ID": "nobinder"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_server.port)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "HostUnsupported" in done.stderr and "modprobe binder_linux" in done.stderr
    assert "Traceback" not in done.stderr


# --- the provider through the real engine --------------------------------------------------------


def test_create_health_reset_destroy(
    make_provider: MakeProvider, docker_client: Any, adb_server: AdbServer
) -> None:
    provider = make_provider(min_count=1, max_count=2, labels={"host": "test"})
    pool_id = provider.config.pool_id
    (spec,) = run(provider.start())
    assert (spec.provider, spec.labels, spec.serial) == (
        "redroid",
        {"host": "test"},
        f"127.0.0.1:{provider.config.base_port}",
    )
    assert (spec.profile.width, spec.profile.height, spec.profile.density, spec.profile.android) == (
        720,
        1600,
        320,
        "13",
    )
    assert "com.android.adbkeyboard" in spec.profile.apps

    name = provider.container_name(spec.serial)
    first = docker_client.containers.get(name)
    assert first.labels[LABEL_POOL] == pool_id and first.labels[LABEL_ROLE] == "phone"
    assert first.labels[LABEL_PORT] == str(provider.config.base_port)
    assert {"androidboot.redroid_width=720", "androidboot.redroid_height=1600", "androidboot.redroid_dpi=320",
            "androidboot.redroid_fps=30", "androidboot.redroid_gpu_mode=guest"} <= set(first.attrs["Args"])  # fmt: skip
    assert (first.attrs["HostConfig"]["Memory"], first.attrs["HostConfig"]["NanoCpus"]) == (
        1024 * 2**20,
        10**9,
    )
    first_volume = data_volume(first)
    assert docker_client.volumes.get(first_volume).attrs["Labels"][LABEL_ROLE] == "data"

    health = run(provider.health(spec.serial))
    assert health.ok, health.detail
    phone = AdbDevice(spec.serial, adb_port=adb_server.port)
    assert run(_view(phone)) == ("null", "", ADB_KEYBOARD_IME)  # ADB Keyboard enabled and selected
    run(_dirty(phone))
    assert run(_view(phone))[:2] == ("previous-user", "secret.txt\n")

    run(provider.reset(spec.serial))
    second = docker_client.containers.get(name)
    assert second.id != first.id, "reset recreates the container"
    assert data_volume(second) != first_volume
    assert ours(docker_client, pool_id) == ([name], [data_volume(second)]), "the old volume is gone"
    assert run(_view(phone)) == ("null", "", ADB_KEYBOARD_IME), "the previous user's data survived a reset"
    assert run(provider.health(spec.serial)).ok

    with pytest.raises(UnknownDevice):
        run(provider.reset("127.0.0.1:1"))
    run(provider.destroy(spec.serial))
    run(provider.destroy(spec.serial))  # idempotent
    assert run(provider.list()) == []
    assert ours(docker_client, pool_id) == ([], [])


def test_a_personal_phones_volume_outlives_its_containers_until_its_data_is_removed(
    make_provider: MakeProvider, docker_client: Any, adb_server: AdbServer
) -> None:
    provider = make_provider(min_count=1, max_count=1)
    pool_id = provider.config.pool_id
    (spec,) = run(provider.start())
    name = provider.container_name(spec.serial)
    phone = AdbDevice(spec.serial, adb_port=adb_server.port)
    personal_id = uuid.uuid4()
    volume = provider.personal_volume(personal_id)

    run(provider.attach(spec.serial, personal_id))
    on_p = docker_client.containers.get(name)
    assert data_volume(on_p) == volume
    labels = docker_client.volumes.get(volume).attrs["Labels"]
    assert labels[LABEL_ROLE] == "personal" and labels[LABEL_PERSONAL] == str(personal_id)
    assert labels[LABEL_IMAGE] == STANDIN
    assert run(_view(phone))[:2] == ("null", "")  # a new personal phone: factory state
    run(_dirty(phone))  # the person's own data now

    # The container is disposable: detached (the pool's device back on its own, fresh volume) ...
    run(provider.detach(spec.serial))
    assert data_volume(docker_client.containers.get(name)) != volume
    assert run(_view(phone))[:2] == ("null", ""), "a detached phone is in factory state"
    assert volume in ours(docker_client, pool_id)[1]
    # ... its orphans reaped, the personal volume is not one of them ...
    run(provider.reap_orphans())
    assert volume in ours(docker_client, pool_id)[1]
    # ... and a new container on the volume finds the data.
    run(provider.attach(spec.serial, personal_id))
    assert data_volume(docker_client.containers.get(name)) == volume
    assert docker_client.containers.get(name).id != on_p.id
    assert run(_view(phone))[:2] == ("previous-user", "secret.txt\n")

    # A reset never wipes it either: it detaches first.
    run(provider.reset(spec.serial))
    assert run(_view(phone))[:2] == ("null", "")
    run(provider.attach(spec.serial, personal_id))
    assert run(_view(phone))[:2] == ("previous-user", "secret.txt\n")
    with pytest.raises(ProviderError, match="still runs"):
        run(provider.remove_data(personal_id))
    run(provider.detach(spec.serial))
    run(provider.remove_data(personal_id))
    assert volume not in ours(docker_client, pool_id)[1], "deleting the personal phone removes its volume"

    # A volume another image made is refused, with what to do.
    other = uuid.uuid4()
    docker_client.volumes.create(
        name=provider.personal_volume(other),
        labels={**provider.config.labels_for("personal"), LABEL_IMAGE: "redroid/redroid:12.0.0-old"},
    )
    with pytest.raises(ProviderError, match="migrate the volume"):
        run(provider.attach(spec.serial, other))
    run(provider.remove_data(other))


def test_capacity_concurrent_creates_and_close(make_provider: MakeProvider, docker_client: Any) -> None:
    provider = make_provider(max_count=2)
    with pytest.raises(UnsupportedProfile, match="Android 13"):
        run(provider.create(DeviceProfile(android="14")))
    with pytest.raises(ProviderError, match=r"adb_keyboard_apk /nonexistent\.apk is not a file"):
        run(make_provider(adb_keyboard_apk="/nonexistent.apk").start())

    async def two() -> list[Any]:
        import asyncio

        return await asyncio.gather(provider.create(), provider.create(DeviceProfile(width=600, height=1000)))

    a, b = run(two())
    assert a.serial != b.serial
    assert (b.profile.width, b.profile.height) == (600, 1000) and run(provider.health(b.serial)).ok
    with pytest.raises(ProviderCapacity, match="max_count"):
        run(provider.create())
    assert len(ours(docker_client, provider.config.pool_id)[0]) == 2
    run(provider.close())
    assert ours(docker_client, provider.config.pool_id) == ([], [])


def test_health_reports_a_dead_container_and_reset_replaces_it(
    make_provider: MakeProvider, docker_client: Any
) -> None:
    provider = make_provider(max_count=1)
    spec = run(provider.create())
    docker_client.containers.get(provider.container_name(spec.serial)).kill()
    health = wait_until(
        lambda: (h := run(provider.health(spec.serial))) and not h.ok and h, timeout=15, what="unhealthy"
    )
    assert "exited" in health.detail
    run(provider.reset(spec.serial))
    assert run(provider.health(spec.serial)).ok


def test_golden_volume_is_shared_read_only_and_survives_reset_and_reaping(
    make_provider: MakeProvider, docker_client: Any, dockerd: Dockerd, adb_server: AdbServer,
    reserve_ports: ReservePorts,
) -> None:
    # A golden volume as an operator makes one: boot a phone on it once, set it up, remove the container.
    golden = f"golden-{uuid.uuid4().hex[:8]}"
    docker_client.volumes.create(golden)
    port = reserve_ports(1)
    maker = docker_client.containers.run(
        STANDIN, ["androidboot.redroid_width=720", "androidboot.redroid_height=1600"], detach=True,
        network_mode="host", environment={"ADB_PORT": str(port)},
        volumes={golden: {"bind": "/data", "mode": "rw"}, **_binds(standin_mounts())},
    )  # fmt: skip
    try:
        base = AdbDevice(f"127.0.0.1:{port}", adb_port=adb_server.port)
        run(base.connect(timeout=60))
        run(base.shell("settings put global pf_golden yes", check=True))
        run(base.disconnect())
    finally:
        maker.remove(force=True)

    provider = make_provider(max_count=1, golden_volume=golden)
    spec = run(provider.create())
    phone = AdbDevice(spec.serial, adb_port=adb_server.port)
    assert run(phone.shell("settings get global pf_golden", check=True)).stdout.strip() == "yes"
    run(_dirty(phone))
    run(provider.reset(spec.serial))
    assert run(phone.shell("settings get global pf_golden", check=True)).stdout.strip() == "yes"
    assert run(_view(phone))[:2] == ("null", "")
    # A personal phone in this mode: its volume is the private /data-diff over the golden /data-base.
    personal_id = uuid.uuid4()
    volume = provider.personal_volume(personal_id)
    run(provider.attach(spec.serial, personal_id))
    mounts = {m["Destination"]: m.get("Name") for m in
              docker_client.containers.get(provider.container_name(spec.serial)).attrs["Mounts"]}  # fmt: skip
    assert (mounts["/data-diff"], mounts["/data-base"]) == (volume, golden)
    run(_dirty(phone))
    run(provider.detach(spec.serial))
    run(provider.attach(spec.serial, personal_id))
    assert run(_view(phone))[:2] == ("previous-user", "secret.txt\n")
    assert run(phone.shell("settings get global pf_golden", check=True)).stdout.strip() == "yes"
    run(provider.detach(spec.serial))
    run(provider.remove_data(personal_id))
    run(provider.close())
    assert run(make_provider(max_count=1, pool_id=provider.config.pool_id).reap_orphans()) == []
    assert docker_client.volumes.get(golden).name == golden, "the golden volume is never reaped"
    docker_client.volumes.get(golden).remove()


def _binds(mounts: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {m.split(":")[0]: {"bind": m.split(":")[1], "mode": "ro"} for m in mounts}


# --- `phonefleet pool` with the redroid provider -------------------------------------------------


async def _lease_dirty_release(url: str, serial: str, adb_port: int) -> None:
    from device_pool.pool import LeaseStore

    async with open_sessions(url) as sessions:
        store = LeaseStore(sessions, "sqlite")
        grant = await store.acquire(holder="test", tenant_id=None, ttl_s=60)
        assert grant is not None and grant.serial == serial
        await _dirty(AdbDevice(serial, adb_port=adb_port))
        assert await store.release(grant.lease_id, "test")


async def _device_states(url: str) -> list[tuple[str, str]]:
    from device_pool.pool import DeviceStore

    async with open_sessions(url) as sessions:
        rows = await DeviceStore(sessions, "sqlite").devices()
        return [(row.serial, row.state.value) for row in rows if row.state.value != "retired"]


def test_pool_command_leases_and_resets_redroid_phones_and_orphans_are_reaped(
    dockerd: Dockerd, docker_client: Any, adb_server: AdbServer, make_provider: MakeProvider, tmp_path: Path,
    reserve_ports: ReservePorts,
) -> None:
    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    pool_id, base_port = f"p{uuid.uuid4().hex[:8]}", reserve_ports(2)
    env = {**os.environ, "PHONEFLEET_DATABASE_URL": url, "PHONEFLEET_DATA_DIR": str(tmp_path / "data"),
           "PHONEFLEET_POOL__PROVIDER": "redroid", "PHONEFLEET_POOL__COUNT": "1",
           "PHONEFLEET_POOL__MIN_IDLE": "1", "PHONEFLEET_POOL__BASE_PORT": str(base_port),
           "PHONEFLEET_POOL__REDROID__MAX_COUNT": "2"}  # fmt: skip
    for key, value in standin_settings(dockerd.url, pool_id).items():
        env[f"PHONEFLEET_POOL__REDROID__{key.upper()}"] = (
            json.dumps(value) if isinstance(value, list) else str(value)
        )
    log_path = tmp_path / "pool.log"
    command = [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_server.port),
               "--reap-interval", "1"]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    serial = f"127.0.0.1:{base_port}"
    name = f"phonefleet-{pool_id}-{base_port}"
    try:

        def idle() -> bool:
            if proc.poll() is not None:
                raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")
            # While the phone is leased the manager may add a second (min_idle 1, up to max_count 2).
            return dict(run(_device_states(url))).get(serial) == "idle"

        wait_until(idle, timeout=120, interval=0.3, what="the pool registers its redroid phone idle")
        before = docker_client.containers.get(name).id
        run(_lease_dirty_release(url, serial, adb_server.port))
        wait_until(
            lambda: idle() and docker_client.containers.get(name).id != before,
            timeout=120, interval=0.3, what="the released phone is recreated and idle again",
        )  # fmt: skip
        assert run(_view(AdbDevice(serial, adb_port=adb_server.port))) == ("null", "", ADB_KEYBOARD_IME)

        proc.send_signal(signal.SIGKILL)  # a pool manager that dies without close()
        proc.wait(timeout=30)
        assert name in ours(docker_client, pool_id)[0], "the killed manager's phone is left running"
    except BaseException:
        print(f"phonefleet pool log:\n{log_path.read_text()[-6000:]}", file=sys.stderr)
        raise
    finally:
        stop_process(proc)
    reaped = run(make_provider(max_count=2, pool_id=pool_id).reap_orphans())
    assert name in reaped
    assert ours(docker_client, pool_id) == ([], [])


# --- a personal phone on redroid through the pool manager ----------------------------------------


async def _personal_lease(leases: Any, manager: Any, phone_id: uuid.UUID, tenant_id: uuid.UUID) -> Any:
    """Lease the personal phone while the manager's passes run beside it, as `phonefleet pool`'s would."""
    import asyncio

    waiting = asyncio.ensure_future(leases.wait_acquire(
        phone_id, holder="test", tenant_id=tenant_id, ttl_s=60, timeout_s=60, wake_timeout_s=60,
    ))  # fmt: skip
    while not waiting.done():
        await manager.reconcile()
        await asyncio.sleep(0.02)
    return waiting.result()


def test_a_personal_phone_on_redroid_sleeps_wakes_on_its_volume_and_its_deletion_removes_it(
    make_provider: MakeProvider, docker_client: Any, adb_server: AdbServer, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from device_pool.pool import LeaseStore, PoolManager
    from device_pool.pool.personal import PersonalPhoneLeases
    from orchestrator.db import Device, PersonalPhone, PersonalPhoneState
    from orchestrator.services.personal_phones import delete_phones_of
    from tests.aio import eventually
    from tests.orchestrator.factories import make_user

    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    provider = make_provider(min_count=1, max_count=1)
    pool_id = provider.config.pool_id
    phone = None

    async def scenario() -> None:
        nonlocal phone
        async with open_sessions(url) as sessions:
            store = LeaseStore(sessions, "sqlite")
            manager = PoolManager(store, provider, min_idle=1, max_devices=1, health_interval_s=600,
                                  reap_interval_s=600, personal_idle_stop_s=2.0)  # fmt: skip
            leases = PersonalPhoneLeases(store)
            async with sessions.begin() as s:
                user = await make_user(s)
                row = PersonalPhone(tenant_id=user.tenant_id, user_id=user.id, name="p")
                s.add(row)
                await s.flush()
                phone_id, tenant_id = row.id, user.tenant_id
            volume = provider.personal_volume(phone_id)

            async def read() -> tuple[PersonalPhone | None, Device | None]:
                async with sessions() as s:
                    p = await s.get(PersonalPhone, phone_id)
                    (d,) = [d for d in (await s.scalars(select(Device))).all()
                            if d.state.value != "retired"]  # fmt: skip
                    return p, d

            try:
                (spec,) = await provider.start()
                await manager.sync_devices()
                name = provider.container_name(spec.serial)
                phone = AdbDevice(spec.serial, adb_port=adb_server.port)

                # Asleep → a lease wakes it: the manager recreates the container on the phone's volume.
                first = await _personal_lease(leases, manager, phone_id, tenant_id)
                assert first.wake_s is not None
                on_p = docker_client.containers.get(name)
                assert data_volume(on_p) == volume
                assert (await _view(phone))[:2] == ("null", ""), "a new phone: factory state"
                await _dirty(phone)
                assert await store.release(first.grant.lease_id, "test")
                await manager.reconcile()
                p, d = await read()
                assert p.state == PersonalPhoneState.READY and d.personal_phone_id == phone_id, "kept for P"
                assert docker_client.containers.get(name).id == on_p.id, "a kept phone's container stays"

                # Unused for idle_stop_s: it sleeps — its container recreated on a volume of the pool's own.
                async def asleep() -> bool:
                    await manager.reconcile()
                    p, d = await read()
                    return p.state == PersonalPhoneState.ASLEEP and d.personal_phone_id is None and \
                        d.state.value == "idle"  # fmt: skip

                await eventually(asleep, timeout=30, what="P asleep, its device back to the pool")
                pooled = docker_client.containers.get(name)
                assert pooled.id != on_p.id and data_volume(pooled) != volume
                assert volume in ours(docker_client, pool_id)[1], "the volume outlives its container"
                assert (await _view(phone))[:2] == ("null", ""), "the pool's device is in factory state"

                # The next lease wakes it: a new container on the same volume, the data still there.
                second = await _personal_lease(leases, manager, phone_id, tenant_id)
                assert second.wake_s is not None, "an asleep phone wakes"
                woken = docker_client.containers.get(name)
                assert woken.id not in (on_p.id, pooled.id) and data_volume(woken) == volume
                assert (await _view(phone))[:2] == ("previous-user", "secret.txt\n")
                assert await store.release(second.grant.lease_id, "test")
                await manager.reconcile()

                # Deleting P (as a user's or tenant's deletion does): its device stopped, its volume removed.
                async with sessions.begin() as s:
                    assert await delete_phones_of(s, tenant_id) == 1

                async def gone() -> bool:
                    await manager.reconcile()
                    p, d = await read()
                    return p is None and d.personal_phone_id is None and d.state.value == "idle"

                await eventually(gone, timeout=30, what="P's row removed, its device back to the pool")
                assert volume not in ours(docker_client, pool_id)[1], "deleting P removes its volume"
                assert (await _view(phone))[:2] == ("null", "")
            finally:
                await provider.close()

    run(scenario(), timeout=150)


# --- a personal phone on redroid through the API ------------------------------------------------


def _links() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo("data/links")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        target = tarfile.TarInfo("data/links/target")
        target.size, target.uid, target.gid, target.mode = 6, 1000, 1000, 0o640
        tar.addfile(target, io.BytesIO(b"secret"))
        sym = tarfile.TarInfo("data/links/sym")
        sym.type, sym.linkname = tarfile.SYMTYPE, "target"
        tar.addfile(sym)
        hard = tarfile.TarInfo("data/links/hard")
        # A hard link's header carries its file's owner and mode, as Docker's own archives do
        # (unpacking applies them to the one inode).
        hard.type, hard.linkname, hard.uid, hard.gid, hard.mode = tarfile.LNKTYPE, "data/links/target", 1000, 1000, 0o640
        tar.addfile(hard)
    return buffer.getvalue()


_LINKS = _links()


def _in_volume(client: Any, volume: str, put: bytes | None = None) -> dict[str, tarfile.TarInfo]:
    """Write ``put`` into the volume (members under data/), or read its data/links, through a
    never-started container of the stand-in image, as an operator's ``docker cp`` would."""
    helper = client.containers.create(STANDIN, command=["true"], volumes={volume: {"bind": "/data", "mode": "rw"}})
    try:
        if put is not None:
            put_archive(client, helper.id, "/", put)
            return {}
        chunks, _ = helper.get_archive("/data/links")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:") as tar:
            return {f"data/{m.name}": m for m in tar.getmembers()}
    finally:
        helper.remove(force=True)


def test_a_redroid_personal_phone_through_the_api_keeps_its_volume_exports_imports_and_is_deleted(
    make_provider: MakeProvider, docker_client: Any, adb_server: AdbServer, start_api: Any, tmp_path: Path  # noqa: F811
) -> None:
    """The API (pool.provider=redroid on the stand-in's engine) and a pool manager over one redroid
    phone: P's state, written in a session, survives its container being recreated as P sleeps and
    wakes; its export (the volume, read by Docker) imports as Q, whose new volume wakes with that
    state; deleting P removes its volume. Time passing is P's ``last_used_at`` moved back."""
    from tests.orchestrator.api.pools import running_pool
    from tests.orchestrator.api.test_personal_phone_sessions import (
        close,
        make_phone,
        open_session,
        unused_since,
        wait_phone,
    )

    db_url = sqlite_url(tmp_path / "api.db")  # the API and the pool manager share it
    migrate_to_head(db_url)
    provider = make_provider(min_count=1, max_count=1)
    pool_id = provider.config.pool_id
    fields = standin_settings(provider.config.docker_url, pool_id)
    api = start_api(db_url, pool={"provider": "redroid", "redroid": fields})
    me = api.caller()
    p = make_phone(me, "P")

    def on_device(session: dict[str, Any], scenario: Callable[[AdbDevice], Any]) -> Any:
        serial = device_serial(api.db_url, session["device"]["id"])

        async def go() -> Any:
            phone = AdbDevice(serial, adb_port=adb_server.port)
            await phone.connect(timeout=30)
            return await scenario(phone)

        return run(go())

    with running_pool(db_url, provider, min_idle=1, max_devices=1, reap_interval_s=0.5):
        held = open_session(me, personal_phone_id=p)
        container = docker_client.containers.get(provider.container_name(device_serial(api.db_url, held["device"]["id"])))
        assert data_volume(container) == provider.personal_volume(uuid.UUID(p))
        assert on_device(held, _view)[:2] == ("null", ""), "a new phone: factory state"
        on_device(held, _dirty)
        assert _home_pool(db_url, p) == pool_id, "its first wake pinned it to this pool (its volume is here)"
        close(me, held)
        wait_phone(me, p, "ready")
        unused_since(api.db_url, p, 3600)
        wait_phone(me, p, "asleep")
        assert provider.personal_volume(uuid.UUID(p)) in ours(docker_client, pool_id)[1]

        # What Android's /data holds besides plain files: owners and modes, symbolic and hard links.
        _in_volume(docker_client, provider.personal_volume(uuid.UUID(p)), _LINKS)
        exported = me.http.get(f"/api/v1/personal-phones/{p}/export")
        assert exported.status_code == 200, exported.text
        archive = exported.content
        assert b"previous-user" not in archive, "encrypted"

        again = open_session(me, personal_phone_id=p)
        woken = docker_client.containers.get(container.name)
        assert woken.id != container.id, "a new container, on P's volume"
        assert on_device(again, _view)[:2] == ("previous-user", "secret.txt\n")
        close(me, again)
        wait_phone(me, p, "ready")

        made = me.http.post("/api/v1/personal-phones/import", params={"name": "Q"}, content=archive,
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert made.status_code == 201, made.text
        q = made.json()["id"]
        assert _home_pool(db_url, q) == pool_id, "the import's home pool: the engine that got the volume"
        q_volume = provider.personal_volume(uuid.UUID(q))
        assert q_volume in ours(docker_client, pool_id)[1], "the import made Q's volume"
        links = _in_volume(docker_client, q_volume)
        assert (links["data/links/target"].uid, links["data/links/target"].mode & 0o7777) == (1000, 0o640)
        assert links["data/links/sym"].issym() and links["data/links/sym"].linkname == "target"
        assert links["data/links/hard"].isfile() and links["data/links/hard"].size == 6, "a hard link, copied"
        unused_since(api.db_url, p, 3600)  # P's device goes back to the pool for Q
        wait_phone(me, p, "asleep")
        on_q = open_session(me, personal_phone_id=q)
        assert data_volume(docker_client.containers.get(container.name)) == q_volume
        assert on_device(on_q, _view)[:2] == ("previous-user", "secret.txt\n"), "P's data came with the archive"
        close(me, on_q)
        wait_phone(me, q, "ready")

        assert me.http.delete(f"/api/v1/personal-phones/{p}", params={"confirm": "P"}).status_code == 200
        wait_until(lambda: provider.personal_volume(uuid.UUID(p)) not in ours(docker_client, pool_id)[1],
                   timeout=60, interval=0.1, what="P's volume removed")  # fmt: skip
        assert q_volume in ours(docker_client, pool_id)[1], "only P's volume goes"

    # Refused, leaving no phone and no volume: a virtual phone's archive, a member under a link.
    key = archive_cipher(export_key(api.settings) or "")

    def sealed(*members: tarfile.TarInfo) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for member in members:
                body = b"{}" if member.name == "phonefleet-export.json" else b"x" * member.size
                tar.addfile(member, io.BytesIO(body) if member.isfile() else None)
        return key.seal(buffer.getvalue())

    def member(name: str, *, size: int = 0, link: str | None = None) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        if link is not None:
            info.type, info.linkname = tarfile.SYMTYPE, link
        return info

    def import_(archive: bytes) -> Any:
        return me.http.post("/api/v1/personal-phones/import", content=archive,
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip

    meta = member("phonefleet-export.json", size=2)  # "{}": no provider, so a virtual phone's
    virtual = import_(sealed(meta))
    assert (virtual.status_code, virtual.json()["error"]) == (409, "personal_phones_unsupported")
    under_link = import_(sealed(meta, member("data/etc", link="/etc"), member("data/etc/passwd", size=1)))
    assert (under_link.status_code, under_link.json()["error"]) == (422, "personal_phone_archive_unsafe")
    assert "under a symbolic link" in under_link.json()["message"]
    names = {p["name"] for p in me.http.get("/api/v1/personal-phones").json()["items"]}
    assert names == {"Q"}
    assert ours(docker_client, pool_id)[1].count(q_volume) == 1
    assert len([v for v in ours(docker_client, pool_id)[1] if "-personal-" in v]) == 1, "no volume left"


def _home_pool(db_url: str, phone_id: str) -> str | None:
    async def read() -> str | None:
        async with open_sessions(db_url) as sessions, sessions() as session:
            phone = await session.get(PersonalPhone, uuid.UUID(phone_id))
            assert phone is not None
            return phone.home_pool

    return run(read())
