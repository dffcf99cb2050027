"""One capture per phone across API processes: viewers on two APIs, one recording on the phone.

Two apps on one database and Redis, as ``phonefleet api --workers 2`` runs them (each with its own
``LiveHub``), served on the test's event loop so the test can read both hubs and stop one. The virtual
phone counts its streaming screenrecords (``phonefleet-sim recordings``): the test asserts the phone
never ran two at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import redis

from device_pool.driver import AdbDevice
from orchestrator.api import create_app
from orchestrator.cli.port_file import read_port_file
from orchestrator.live import LiveHub
from orchestrator.live.relay import SharedCapture
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.aio import eventually, run, until
from tests.conftest import REDIS_URL, AdbServer
from tests.orchestrator.conftest import StartApi
from tests.orchestrator.live.conftest import lease_phone, live_settings, serve_here, ticking_phone
from tests.orchestrator.live.peer import LiveClient
from tests.processes import REPO, SimPhones, stop_process


async def recordings(phone: AdbDevice) -> dict[str, int]:
    out = await phone.shell("phonefleet-sim recordings", check=True)
    return {k: int(v) for k, v in (part.split("=") for part in out.stdout.split())}


def _owner(hub: LiveHub, device_id: uuid.UUID) -> bool | None:
    stream = hub.stream(device_id)
    capture = stream._capture if stream is not None else None
    return capture.owner if isinstance(capture, SharedCapture) else None


def test_viewers_on_two_api_processes_share_one_recording_and_the_other_takes_over(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, redis_prefix: str,
    start_api: StartApi,
) -> None:  # fmt: skip
    caller = start_api(migrated_pg_url).caller()  # only for making a key in the database
    settings = Settings(
        data_dir=tmp_path / "data", database_url=migrated_pg_url, redis_url=REDIS_URL,
        webrtc=live_settings(adb_server.port, stream_owner_ttl_s=1.0),
    )  # fmt: skip

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=5)
        queues = [TaskQueue.from_settings(settings, key_prefix=redis_prefix) for _ in range(2)]
        apps = [create_app(settings, queue=queue) for queue in queues]
        clients = [LiveClient() for _ in range(3)]
        try:
            async with AsyncExitStack() as first_api:
                one = await first_api.enter_async_context(serve_here(apps[0]))
                async with serve_here(apps[1]) as two, lease_phone(
                    migrated_pg_url, live_phone.serial(), caller.tenant_id
                ) as leased:
                    path = f"/api/v1/devices/{leased.device_id}/webrtc"
                    hubs: list[LiveHub] = [app.state.live for app in apps]
                    # One viewer on the first process, two on the second.
                    for client, url in zip(clients, (one, two, two), strict=True):
                        async with httpx.AsyncClient(
                            base_url=url, headers={"Authorization": f"Bearer {caller.key}"}, timeout=30
                        ) as http:
                            r = await client.connect(http, path)
                        assert r.status_code == 200, r.text
                    for client in clients:
                        await client.wait_frames(5)
                    assert [_owner(hub, leased.device_id) for hub in hubs] == [True, False]
                    counts = await recordings(phone)
                    assert counts["running"] == 1 and counts["peak"] == 1, counts

                    # Picture loss on a relayed viewer (RTCP PLI) is asked of the owner, which restarts
                    # its recording for the keyframe; every viewer decodes on.
                    owned = hubs[0].stream(leased.device_id)
                    assert owned is not None and owned.keyframe_restarts == 0
                    receiver = clients[2].pc.getReceivers()[0]
                    await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[0].source)

                    async def restarted() -> bool:
                        return owned.keyframe_restarts == 1

                    await eventually(restarted, timeout=15, what="the owner restarted its recording")
                    seen = [c.frames for c in clients]
                    for client, frames in zip(clients, seen, strict=True):
                        await client.wait_frames(frames + 5)

                    # The owner's own viewer leaves: past its linger it keeps streaming for the relay.
                    await clients[0].close()

                    async def alone() -> bool:
                        return hubs[0].viewer_count == 0

                    await eventually(alone, timeout=15, what="the owner's viewer gone")
                    seen = [c.frames for c in clients[1:]]
                    for client, frames in zip(clients[1:], seen, strict=True):
                        await client.wait_frames(frames + 5)  # 1 s at 5 Hz: well past linger_s (0.2 s)
                    assert [_owner(hub, leased.device_id) for hub in hubs] == [True, False]

                    # The owner's process goes away: the other claims the phone and its viewers keep
                    # decoding, the phone still running one recording at a time.
                    await first_api.aclose()

                    async def took_over() -> bool:
                        return _owner(hubs[1], leased.device_id) is True

                    await eventually(took_over, timeout=15, what="the second process owns the stream")
                    seen = [c.frames for c in clients[1:]]
                    for client, frames in zip(clients[1:], seen, strict=True):
                        await client.wait_frames(frames + 5)
                    counts = await recordings(phone)
                    assert counts["running"] == 1 and counts["peak"] == 1, counts
                    assert counts["started"] >= 2  # the second process's own recording
        finally:
            for client in clients:
                await client.close()
            for queue in queues:
                queue.close()

    run(scenario(), timeout=120)


def test_phonefleet_api_with_two_workers_makes_one_recording_for_viewers_on_both(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, start_api: StartApi,
) -> None:  # fmt: skip
    """The real thing: ``phonefleet api --workers 2``; viewers connect until both workers have one (the
    owner's units channel then has a subscriber: the other worker relays). Then the owner is killed."""
    caller = start_api(migrated_pg_url).caller()  # the key, in the database both workers read
    port_file = tmp_path / "api.port"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PHONEFLEET_")},
        "PHONEFLEET_DATABASE_URL": migrated_pg_url, "PHONEFLEET_REDIS_URL": REDIS_URL,
        "PHONEFLEET_DATA_DIR": str(tmp_path / "data"), "PHONEFLEET_WEBRTC__HOST_ADDRESSES": '["127.0.0.1"]',
        "PHONEFLEET_WEBRTC__ADB_PORT": str(adb_server.port), "PHONEFLEET_WEBRTC__MAX_WIDTH": "360",
        "PHONEFLEET_WEBRTC__STREAM_OWNER_TTL_S": "1",
    }  # fmt: skip
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "--log-level", "WARNING", "api", "--workers", "2",
             "--port", "0", "--port-file", str(port_file)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    r = redis.Redis.from_url(REDIS_URL)

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=5)
        port = await until(lambda: read_port_file(port_file), timeout=60, what="the API's port")
        url = f"http://127.0.0.1:{port}"
        await until(lambda: _healthy(url), timeout=60, what="the API up")
        clients: list[LiveClient] = []
        try:
            async with lease_phone(migrated_pg_url, live_phone.serial(), caller.tenant_id) as leased:
                path = f"/api/v1/devices/{leased.device_id}/webrtc"
                channel = f"phonefleet:live:units:{leased.device_id}"
                while not r.pubsub_numsub(channel)[0][1]:
                    assert len(clients) < 10, "every viewer landed on one worker"
                    client = LiveClient()
                    clients.append(client)
                    # A connection of its own each: the workers take turns accepting.
                    async with httpx.AsyncClient(
                        base_url=url, headers={"Authorization": f"Bearer {caller.key}"}, timeout=30
                    ) as http:
                        response = await client.connect(http, path)
                    assert response.status_code == 200, response.text
                    await client.wait_frames(3)
                for client in clients:
                    await client.wait_frames(client.frames + 5)
                counts = await recordings(phone)
                assert counts == {"running": 1, "started": 1, "peak": 1}, counts

                # The owner dies (SIGKILL: no release): its key expires and the other worker takes
                # the phone over; its viewers decode on, after a recording of its own.
                owner = r.get(f"phonefleet:live:owner:{leased.device_id}")
                assert owner is not None
                dead = int(owner.decode().split(":")[1])
                assert dead != proc.pid and _parent(dead) == proc.pid  # one of our API's workers
                os.kill(dead, signal.SIGKILL)

                def taken_over() -> bool:
                    value = r.get(f"phonefleet:live:owner:{leased.device_id}")
                    return value is not None and int(value.decode().split(":")[1]) != dead

                await until(taken_over, timeout=20, what="another worker owns the stream")
                seen = [c.frames for c in clients]

                async def decoding() -> bool:
                    return any(c.frames >= frames + 5 for c, frames in zip(clients, seen, strict=True))

                await eventually(decoding, timeout=20, what="the surviving worker's viewers decode")
                counts = await recordings(phone)
                assert counts == {"running": 1, "started": 2, "peak": 1}, counts
        finally:
            for client in clients:
                await client.close()

    try:
        run(scenario(), timeout=120)
    finally:
        stop_process(proc, timeout=20)
        r.close()
    assert proc.returncode == 0, log.read_text()[-2000:]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
