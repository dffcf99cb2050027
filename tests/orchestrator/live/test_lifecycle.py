"""When viewers and captures end: lease over, idle, never connected, shutdown — and nothing leaks.

The last tests serve the API on the test's own event loop (``serve_here``), so the API's asyncio
tasks, sockets and threads are the test's to count.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from device_pool.sim import counter
from orchestrator.api import create_app
from orchestrator.db import UserRole
from orchestrator.live import LiveHub
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.aio import run
from tests.conftest import REDIS_URL, AdbServer
from tests.orchestrator.conftest import Api, Caller, StartApi
from tests.orchestrator.live.conftest import http_for, lease_phone, live_settings, serve_here, ticking_phone
from tests.orchestrator.live.peer import LiveClient
from tests.processes import SimPhones


async def _eventually(check: Callable[[], bool] | Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


def test_viewers_are_closed_when_the_lease_ends(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased, http_for(
            live_api, caller
        ) as http:
            clients = [LiveClient(), LiveClient()]
            try:
                for client in clients:
                    r = await client.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                    assert r.status_code == 200, r.text
                    await client.wait_frames(2)
                await leased.release()  # the pool takes the phone back (to reset it for the next user)
                for client in clients:
                    bye = await client.wait_message("bye")
                    assert bye["reason"] == "lease ended"
                    await _eventually(lambda c=client: c.pc.connectionState == "closed", "peer closed")
                # The phone is no longer this tenant's: not even visible.
                fresh = LiveClient()
                try:
                    r = await fresh.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                    assert r.status_code == 404, r.text
                finally:
                    await fresh.close()
            finally:
                for client in clients:
                    await client.close()

    run(scenario())


def test_a_viewer_whose_api_key_is_revoked_is_closed(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()
    admin = live_api.caller(role=UserRole.ADMIN, tenant_id=caller.tenant_id)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased, http_for(
            live_api, caller
        ) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                assert r.status_code == 200, r.text
                await client.wait_frames(2)
                revoked = await asyncio.to_thread(admin.http.post, f"/api/v1/api-keys/{caller.key_id}/revoke")
                assert revoked.status_code == 200, revoked.text
                assert (await client.wait_message("bye"))["reason"] == "API key revoked"
            finally:
                await client.close()

    run(scenario())


def test_the_capture_restarts_at_its_time_limit_without_the_viewer_noticing(
    start_api: StartApi, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones
) -> None:
    # screenrecord stops after --time-limit (180 s at most on Android); here 1 s.
    api = start_api(migrated_pg_url, webrtc=live_settings(adb_server.port, record_time_limit_s=1))
    caller = api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), adb_server.port, hz=20)
        seqs: list[int] = []

        def stamp(frame) -> None:  # type: ignore[no-untyped-def]
            read = counter.read(frame.to_ndarray(format="gray"))
            if read is not None:
                seqs.append(read.seq)

        async with lease_phone(api.db_url, live_phone.serial(), caller.tenant_id) as leased, http_for(
            api, caller
        ) as http:
            client = LiveClient(on_frame=stamp)
            try:
                r = await client.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                assert r.status_code == 200, r.text
                await client.wait_frames(60, timeout=30)  # three captures' worth at 20 fps
            finally:
                await client.close()
        assert len(seqs) >= 50, seqs  # decodable pictures all along, across the restarts
        assert seqs == sorted(seqs) and seqs[-1] - seqs[0] >= 50

    run(scenario())


def _settings(tmp_path: Path, db_url: str, adb_port: int, **webrtc: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, redis_url=REDIS_URL,
                    webrtc=live_settings(adb_port, **webrtc))  # fmt: skip


def _resources() -> tuple[int, int, int]:
    return len(asyncio.all_tasks()), len(os.listdir("/proc/self/fd")), threading.active_count()


def test_twenty_connect_disconnect_cycles_leak_no_tasks_sockets_or_threads(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, redis_prefix: str,
    start_api: StartApi,
) -> None:  # fmt: skip
    caller = start_api(migrated_pg_url).caller()  # only for making a key in the database
    settings = _settings(tmp_path, migrated_pg_url, adb_server.port, linger_s=0.0)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), adb_server.port, hz=20)
        queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
        app = create_app(settings, queue=queue)
        try:
            async with serve_here(app) as url, lease_phone(
                migrated_pg_url, live_phone.serial(), caller.tenant_id
            ) as leased, _client(url, caller) as http:
                hub: LiveHub = app.state.live
                path = f"/api/v1/devices/{leased.device_id}/webrtc"

                async def cycle() -> None:
                    client = LiveClient()
                    try:
                        r = await client.connect(http, path)
                        assert r.status_code == 200, r.text
                        await client.wait_frames(2)
                        assert (await client.request({"type": "ping"}))["ok"] is True
                    finally:
                        await client.close()
                    await _eventually(lambda: hub.viewer_count == 0, "viewer gone")
                    await _eventually(lambda: hub.stream(leased.device_id) is None, "capture stopped")

                for _ in range(3):  # warm up: pools, executors and caches fill once
                    await cycle()
                baseline = _resources()
                for _ in range(20):
                    await cycle()

                def settled() -> bool:
                    tasks, fds, threads = _resources()
                    return tasks <= baseline[0] and fds <= baseline[1] and threads <= baseline[2]

                try:
                    await _eventually(settled, "back to the baseline", timeout=10)
                except TimeoutError:
                    raise AssertionError(f"(tasks, fds, threads) grew from {baseline} to {_resources()}") from None
        finally:
            queue.close()

    run(scenario(), timeout=300)


def test_one_capture_serves_joiners_and_picture_loss_restarts_it(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, redis_prefix: str,
    start_api: StartApi,
) -> None:  # fmt: skip
    caller = start_api(migrated_pg_url).caller()
    settings = _settings(tmp_path, migrated_pg_url, adb_server.port)

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)  # a still screen
        queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
        app = create_app(settings, queue=queue)
        first, second = LiveClient(), LiveClient()
        try:
            async with serve_here(app) as url, lease_phone(
                migrated_pg_url, live_phone.serial(), caller.tenant_id
            ) as leased, _client(url, caller) as http:
                hub: LiveHub = app.state.live
                path = f"/api/v1/devices/{leased.device_id}/webrtc"
                assert (await first.connect(http, path)).status_code == 200
                stream = hub.stream(leased.device_id)
                assert stream is not None
                await _eventually(lambda: stream.pictures >= 1, "the first picture")
                # A joiner on a still screen is handed the current picture: no second capture.
                assert (await second.connect(http, path)).status_code == 200
                await phone.shell("phonefleet-sim frame-counter on --tick 20", check=True)
                await first.wait_frames(5)
                await second.wait_frames(5)
                assert stream.captures == 1 and stream.viewers == 2

                # Picture loss reported by one viewer (RTCP PLI): the phone starts a new capture,
                # whose first picture is a keyframe, and both viewers keep decoding.
                receiver = second.pc.getReceivers()[0]
                ssrc = receiver.getSynchronizationSources()[0].source
                await receiver._send_rtcp_pli(ssrc)
                await _eventually(lambda: stream.captures == 2, "a restart for the keyframe")
                seen = (first.frames, second.frames)
                await first.wait_frames(seen[0] + 5)
                await second.wait_frames(seen[1] + 5)
        finally:
            await first.close()
            await second.close()
            queue.close()

    run(scenario(), timeout=120)


def test_idle_and_unconnected_viewers_are_closed_and_shutdown_closes_the_rest(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, redis_prefix: str,
    start_api: StartApi,
) -> None:  # fmt: skip
    caller = start_api(migrated_pg_url).caller()
    settings = _settings(tmp_path, migrated_pg_url, adb_server.port, idle_timeout_s=1.5, connect_timeout_s=1.0)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), adb_server.port)
        queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
        app = create_app(settings, queue=queue)
        pinging, silent, staying = LiveClient(), LiveClient(), LiveClient()
        try:
            async with lease_phone(migrated_pg_url, live_phone.serial(), caller.tenant_id) as leased:
                path = f"/api/v1/devices/{leased.device_id}/webrtc"
                async with serve_here(app) as url, _client(url, caller) as http:
                    hub: LiveHub = app.state.live
                    for client in (pinging, silent):
                        assert (await client.connect(http, path)).status_code == 200
                    # An offer whose answer is never applied: ICE never completes.
                    staying.pc.addTransceiver("video", direction="recvonly")
                    await staying.pc.setLocalDescription(await staying.pc.createOffer())
                    r = await http.post(path, json={"type": "offer", "sdp": staying.pc.localDescription.sdp})
                    assert r.status_code == 200 and hub.viewer_count == 3
                    for _ in range(8):  # ~2.4 s: past the idle timeout for the silent one
                        assert (await pinging.request({"type": "ping"}))["ok"] is True
                        await asyncio.sleep(0.3)
                    assert (await silent.wait_message("bye"))["reason"] == "idle"
                    await _eventually(lambda: hub.viewer_count == 1, "only the pinging viewer left")
                    assert not [m for m in pinging.messages if m.get("type") == "bye"]
                # The server stopped (lifespan shutdown): the last viewer was told and closed.
                assert (await pinging.wait_message("bye"))["reason"] == "server shutting down"
                assert hub.viewer_count == 0 and hub.stream(leased.device_id) is None
        finally:
            for client in (pinging, silent, staying):
                await client.close()
            queue.close()

    run(scenario(), timeout=120)


def _client(url: str, caller: Caller) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {caller.key}"}, timeout=30)

