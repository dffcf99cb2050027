"""The Python SDK against a fleet of real processes (``phonefleet api``, ``pool``, ``worker``, a
scripted reference model): the async client runs a task to its end while reading the events socket
and answers the confirmation the task asks for there; then it uses every device API call on a
session's phone (the APK checked in the phone's package manager with adb, a file pushed and pulled
back byte for byte, a log line seen after an action), and refusals arrive as the typed exceptions.
The blocking client reads the same task, its steps and events."""

from __future__ import annotations

import asyncio
from contextlib import closing
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from orchestrator.sdk import FINAL_STATUSES, AsyncClient, Client, errors
from orchestrator.sdk.models import DeviceOut, SessionOut, TaskOut
from tests.aio import run
from tests.apks import build_apk
from tests.databases import read_device_serial
from tests.processes import AdbServer
from tests.system.conftest import Fleet, _member_key

APK_LIMIT = 64 * 1024
PAY = 'do(action="Tap", element=[500,500], message="Pay 1.00 EUR to the shop")'


def test_the_async_sdk_runs_a_task_answers_it_and_drives_a_session_phone(
    start_fleet, adb_server: AdbServer, tmp_path: Path
) -> None:
    # The API reaches session phones through the pool's adb server (the device API).
    fleet: Fleet = start_fleet(1, PHONEFLEET_DEVICE_API__APK_MAX_BYTES=str(APK_LIMIT),
                               PHONEFLEET_WEBRTC__ADB_PORT=str(adb_server.port))  # fmt: skip
    model = fleet.start_model([PAY, 'finish(message="paid")'])
    stranger_key = run(_member_key(fleet.db_url))
    apk = build_apk(tmp_path, "com.example.sdk")

    async def task_part(pf: AsyncClient) -> TaskOut:
        task = await pf.submit("Pay the shop", max_steps=5, timeout_s=120)
        seen: list[str] = []
        async for event in pf.events(task.id, after=0):  # from the first: nothing is missed
            assert event.task_id == task.id
            seen.append(event.type)
            if event.type == "task.confirmation_requested":
                assert "Pay 1.00 EUR" in str(event.payload), event
                answered = await pf.confirm(task.id, True)
                assert answered.id == task.id
            if event.type == "task.status" and event.payload["to"] in FINAL_STATUSES:
                break
        assert seen.index("task.confirmation_requested") < seen.index("task.confirmation"), seen
        done = await pf.task(task.id)
        assert done.status == "succeeded" and done.message == "paid", (done, fleet.tails())
        assert [s.index async for s in pf.steps(task.id)] == [0, 1]
        with pytest.raises(errors.InvalidTransition):  # nothing is asked any more
            await pf.confirm(task.id, True)
        # The worker recorded the run: an MP4 (its ftyp box first) is there as soon as the task ended.
        video = await pf.download_recording("task", task.id, tmp_path / "task.mp4")
        assert video.read_bytes()[4:8] == b"ftyp"
        return done

    async def session_part(pf: AsyncClient, theirs: AsyncClient) -> SessionOut:
        [device] = [d async for d in pf.devices()]
        assert isinstance(device, DeviceOut) and (await pf.device(device.id)).state == "idle"
        session = await pf.start_session(ttl_s=120, wait_s=30)
        sid = session.id
        assert session.device is not None and session.state == "active"
        phone = AdbDevice(await read_device_serial(fleet.db_url, session.device.id), adb_port=fleet.adb_port)
        await phone.connect(timeout=30)

        assert (await pf.screenshot(sid))[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<hierarchy" in await pf.ui_xml(sid)
        tree = await pf.ui_tree(sid)
        [icon] = [e for e in tree["elements"] if e.get("text") == "Settings"]
        assert (await pf.tap(sid, element_id=icon["id"]))["element"]["id"] == icon["id"]
        assert (await pf.press_key(sid, "home"))["key"] == "home"
        await pf.swipe(sid, direction="up")
        await pf.type_text(sid, "hi")

        installed = await pf.install_apk(sid, apk)
        assert installed == {"type": "install_apk", "package": "com.example.sdk", "bytes": len(apk)}
        assert "package:com.example.sdk" in (await phone.shell("pm list packages -3", check=True)).stdout.split()
        log = await pf.logcat_dump(sid, filter=["PackageManager:I"])
        assert any(line["message"].startswith("installed com.example.sdk") for line in log), log

        blob = bytes(range(256)) * 512  # 128 KiB of every byte value
        assert (await pf.push_file(sid, "/sdcard/Download/sdk.bin", blob))["bytes"] == len(blob)
        assert await pf.pull_file(sid, "/sdcard/Download/sdk.bin") == blob
        saved = await pf.download_file(sid, "/sdcard/Download/sdk.bin", tmp_path / "sdk.bin")
        assert saved.read_bytes() == blob and not (tmp_path / "sdk.bin.part").exists()

        # Following the log (only new lines): Settings launched after it opened shows in it.
        lines = pf.logcat(sid, tail=0, filter=["ActivityTaskManager:I"], grep="com.android.settings")
        reading = asyncio.ensure_future(anext(lines))
        while not reading.done():  # the stream opens at its first read: launch until a line comes
            assert (await pf.launch(sid, "Settings"))["package"] == "com.android.settings"
            await asyncio.wait({reading}, timeout=0.5)
        line = reading.result()
        await lines.aclose()
        assert line["tag"] == "ActivityTaskManager" and "com.android.settings" in line["message"], line
        # The same through the blocking client, read in a thread.
        with Client(fleet.url, fleet.key) as blocking, closing(
            blocking.logcat(sid, tail=0, filter=["ActivityTaskManager:I"], grep="com.android.settings")
        ) as followed:
            reading = asyncio.ensure_future(asyncio.to_thread(next, followed))
            while not reading.done():
                await pf.launch(sid, "Settings")
                await asyncio.wait({reading}, timeout=0.5)
            assert "com.android.settings" in reading.result()["message"]

        # Refusals, as the exceptions of their codes.
        with pytest.raises(errors.PathNotAllowed) as escape:
            await pf.push_file(sid, "/sdcard/../data/x", b"x")
        assert escape.value.status == 422 and isinstance(escape.value, errors.InvalidRequest)
        with pytest.raises(errors.PayloadTooLarge) as large:
            await pf.install_apk(sid, b"\x00" * (APK_LIMIT + 1))
        assert large.value.status == 413 and "apk_max_bytes" in large.value.message
        with pytest.raises(errors.ApkRejected):
            await pf.install_apk(sid, b"not a zip")
        with pytest.raises(errors.FileNotFound):
            await pf.pull_file(sid, "/sdcard/Download/none.bin")
        for call in (theirs.session(sid), theirs.ui_tree(sid), theirs.pull_file(sid, "/sdcard/Download/sdk.bin")):
            with pytest.raises(errors.SessionNotFound) as hidden:
                await call
            assert hidden.value.status == 404 and isinstance(hidden.value, errors.NotFound)

        assert (await pf.keepalive(sid)).state == "active"
        assert (await pf.close_session(sid)).state == "closed"
        with pytest.raises(errors.NoLiveDevice):
            await pf.screenshot(sid)
        return session

    async def scenario() -> tuple[TaskOut, SessionOut]:
        async with AsyncClient(fleet.url, fleet.key) as pf, AsyncClient(fleet.url, stranger_key) as theirs:
            # The session first: the fleet's one phone is idle now (the task then waits for it to come
            # back); the worker starts meanwhile.
            worker = asyncio.ensure_future(asyncio.to_thread(fleet.start_worker, model.base_url))
            session = await session_part(pf, theirs)
            await worker
            return await task_part(pf), session

    task, session = run(scenario(), timeout=300)

    with Client(fleet.url, fleet.key) as pf:  # the blocking client: the same routes, the same answers
        assert pf.task(task.id).status == "succeeded"
        assert [t.id for t in pf.tasks(status="succeeded")] == [task.id]
        assert [s.id for s in pf.sessions(state="closed")] == [session.id]
        with closing(pf.events(task.id, after=0)) as stream:
            first = next(stream)
        assert first.type == "task.created" and first.task_id == task.id
        with pytest.raises(errors.TaskNotFound):
            pf.task("00000000-0000-0000-0000-000000000000")
