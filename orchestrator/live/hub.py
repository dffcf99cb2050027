"""The live view's service in the API process: viewers in, one stream per phone, everything closed.

``LiveHub.open`` admits a viewer (``access.py``), starts the phone's stream if it has none (one
capture per phone, whatever the number of viewers), answers the offer and tracks the viewer.
While viewers exist one watcher task re-reads their leases every ``lease_check_s``: a viewer whose
lease ended or changed is closed, as is one that never connected (``connect_timeout_s``) or sat
idle (``idle_timeout_s`` without a message on its control channel); viewers that have a control
channel are told when they gain or lose control. A stream without viewers stops after
``linger_s`` (a viewer who reloads the page finds it still running). ``close()`` ends everything
(the app's lifespan calls it on shutdown).

With Redis (``redis_url``) the phone's capture is shared by every API process: one of them is the
phone's stream owner and the others' streams relay its pictures (``relay.py``); an owner whose own
viewers left keeps streaming while another process still subscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_pool.driver import AdbDevice
from orchestrator.db.database import Database
from orchestrator.encryption import Cipher
from orchestrator.errors import Unavailable, ViewerLimit
from orchestrator.live.access import Admission, ControlState, LiveAccess, LiveTarget
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.ice import browser_ice_servers, pin_host_addresses, rtc_configuration
from orchestrator.live.relay import SharedCapture, StreamRelay
from orchestrator.live.scrcpy import capture_factory, capture_kind
from orchestrator.live.stream import CaptureLike, PhoneStream
from orchestrator.live.user_steps import UserSteps
from orchestrator.live.viewer import Viewer
from orchestrator.notifier import EventSignal
from orchestrator.services.auth import Principal
from orchestrator.settings import WebRtcSettings

__all__ = ["LiveAnswer", "LiveHub"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveAnswer:
    sdp: str
    viewer_id: str
    device_id: uuid.UUID
    geometry: VideoGeometry


class LiveHub:
    def __init__(
        self,
        settings: WebRtcSettings,
        db: Database,
        *,
        data_dir: Path | None = None,
        notifier: EventSignal | None = None,
        cipher: Cipher | None = None,
        session_activity: Callable[[uuid.UUID, uuid.UUID], Awaitable[None]] | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.settings = settings
        # One capture per phone across API processes (None: this process captures what it shows).
        self.relay = StreamRelay(redis_url, ttl_s=settings.stream_owner_ttl_s) if redis_url else None
        # Told (tenant, session) when a session's viewer was active since the last lease check: the
        # session's idle timeout counts from it (SessionService.touch).
        self.session_activity = session_activity
        self.db = db
        self.data_dir = data_dir  # None: a person's input is not recorded as steps
        self.cipher = cipher  # seals their screenshots (storage.encryption_key)
        self.notifier = notifier
        self.access = LiveAccess(db)
        self._user_steps: dict[uuid.UUID, UserSteps] = {}  # by task
        self._configuration = rtc_configuration(settings.ice_servers)
        pin_host_addresses(settings.host_addresses)
        self._streams: dict[uuid.UUID, PhoneStream] = {}
        self._phones: dict[uuid.UUID, AdbDevice] = {}
        self._starting: dict[uuid.UUID, asyncio.Lock] = {}
        self._lingering: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._viewers: dict[str, Viewer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    # --- what routes call ----------------------------------------------------------------------

    def ice_servers(self) -> list[dict[str, Any]]:
        return browser_ice_servers(self.settings.ice_servers)

    async def open(
        self, principal: Principal, target: LiveTarget, offer_sdp: str, *,
        share_link_id: uuid.UUID | None = None, view_only: bool = False,
    ) -> LiveAnswer:  # fmt: skip
        """Answer a viewer's offer. Raises ``NotFound`` (not yours, or no such thing),
        ``NoLiveDevice``, ``ViewerLimit``, ``InvalidSdp``, ``DeviceError`` (the phone cannot stream).

        ``share_link_id``: let in by that share link (``principal`` is the link's, no key behind
        it); ``view_only``: its input is refused whoever holds the phone."""
        if self._closed:
            raise Unavailable("the API is shutting down")
        admission = await self.access.admit(principal, target)
        watching = sum(1 for v in self._viewers.values() if v.device_id == admission.device_id)
        if watching >= self.settings.max_viewers_per_device:
            raise ViewerLimit(
                f"device {admission.device_id} already has {watching} live viewers (the limit)",
                context={"retry_after_s": 5},
            )
        stream = await self._stream_for(admission)
        viewer = Viewer(
            principal, target, admission, stream, self._phones[admission.device_id], self.access,
            self._configuration, on_gone=self._viewer_gone, recorder_for=self._recorder_for(admission),
            share_link_id=share_link_id, view_only=view_only,
        )  # fmt: skip
        self._viewers[viewer.id] = viewer
        try:
            sdp = await viewer.answer(offer_sdp)
        except BaseException:
            await self._drop(viewer, "negotiation failed")
            raise
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="live-watcher")
        logger.info(
            "live viewer joined",
            extra={"device_id": str(admission.device_id), "viewer_id": viewer.id, "target": target.kind},
        )
        return LiveAnswer(sdp, viewer.id, admission.device_id, stream.geometry)

    async def close_share(self, link_id: uuid.UUID) -> int:
        """Close this process's viewers let in by share link ``link_id`` now (it was revoked); how many."""
        gone = [v for v in list(self._viewers.values()) if v.share_link_id == link_id]
        for viewer in gone:
            await self._drop(viewer, "share link revoked")
        return len(gone)

    async def flush_user_steps(self, task_id: uuid.UUID) -> None:
        """Record the person's last step of ``task_id`` now (the hand-back calls this first)."""
        recorder = self._user_steps.get(task_id)
        if recorder is not None:
            await recorder.flush()

    def _recorder_for(self, admission: Admission) -> Callable[[ControlState], UserSteps | None]:
        def recorder(state: ControlState) -> UserSteps | None:
            if self.data_dir is None or not state.records_steps or state.task_id is None:
                return None
            found = self._user_steps.get(state.task_id)
            phone = self._phones.get(admission.device_id)
            if found is None or found.phone is not phone:
                if phone is None or state.tenant_id is None:
                    return None
                found = UserSteps(
                    self.db, self.data_dir, state.task_id, state.tenant_id, phone,
                    quiet_s=self.settings.user_step_quiet_s, notifier=self.notifier, cipher=self.cipher,
                )  # fmt: skip
                self._user_steps[state.task_id] = found
            return found

        return recorder

    async def close(self) -> None:
        """Close every viewer and stream (idempotent)."""
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for viewer in list(self._viewers.values()):
            await self._drop(viewer, "server shutting down")
        for handle in self._lingering.values():
            handle.cancel()
        self._lingering.clear()
        for recorder in list(self._user_steps.values()):
            await recorder.close()
        self._user_steps.clear()
        for device_id in list(self._streams):
            await self._stop_stream(device_id)
        if self.relay is not None:
            await self.relay.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- introspection (tests, metrics) --------------------------------------------------------

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    def stream(self, device_id: uuid.UUID) -> PhoneStream | None:
        return self._streams.get(device_id)

    # --- streams -------------------------------------------------------------------------------

    def _lock(self, device_id: uuid.UUID) -> asyncio.Lock:
        # Starting and stopping a phone's stream take turns (one lock per phone ever watched).
        return self._starting.setdefault(device_id, asyncio.Lock())

    async def _stream_for(self, admission: Admission) -> PhoneStream:
        async with self._lock(admission.device_id):
            return await self._start_stream(admission)

    async def _start_stream(self, admission: Admission) -> PhoneStream:
        device_id = admission.device_id
        handle = self._lingering.pop(device_id, None)
        if handle is not None:
            handle.cancel()
        stream = self._streams.get(device_id)
        if stream is not None and not stream.closed:
            return stream
        s = self.settings
        phone = AdbDevice(admission.serial, adb_host=s.adb_host, adb_port=s.adb_port)
        await phone.connect(timeout=10)
        width, height = await phone.screen_size()
        kind = capture_kind(s, admission.provider, admission.labels)
        try:
            geometry, capture = await capture_factory(
                s, admission.serial, admission.provider, admission.labels, width, height,
                adb_host=s.adb_host, adb_port=s.adb_port, max_width=s.max_width, bit_rate=s.bit_rate,
            )  # fmt: skip
        except OSError as exc:
            raise Unavailable(f"webrtc.scrcpy_server_jar cannot be read: {exc}") from exc
        if self.relay is not None:
            relay, own_capture, made = self.relay, capture, []

            def capture() -> CaptureLike:
                return SharedCapture(relay, device_id, geometry, own_capture, lambda: made[0])

        stream = PhoneStream(
            device_id, geometry, capture,
            keyframe_min_interval_s=s.keyframe_min_interval_s, repeat_s=s.repeat_ms / 1000,
        )  # fmt: skip
        if self.relay is not None:
            made.append(stream)
        await stream.start()
        self._streams[device_id] = stream
        self._phones[device_id] = phone
        stream.capture_kind = kind
        logger.info(
            "live stream started", extra={"device_id": str(device_id), "video": geometry.video, "capture": kind}
        )
        return stream

    async def _stop_stream(self, device_id: uuid.UUID, *, unless_watched: bool = False) -> None:
        async with self._lock(device_id):
            # A viewer that joined while the stop waited for the lock keeps the stream.
            if unless_watched and any(v.device_id == device_id for v in self._viewers.values()):
                return
            relay = self.relay
            if unless_watched and relay is not None and relay.owns(device_id) and await relay.listeners(device_id):
                self._linger_then_stop(device_id)  # another process's viewers watch our capture
                return
            stream = self._streams.pop(device_id, None)
            phone = self._phones.pop(device_id, None)
            for task_id, recorder in list(self._user_steps.items()):
                if recorder.phone is phone:
                    del self._user_steps[task_id]
                    await recorder.close()
            if stream is not None:
                await stream.close()
                logger.info("live stream stopped", extra={"device_id": str(device_id)})
            if self.relay is not None:
                await self.relay.release(device_id)

    def _linger_then_stop(self, device_id: uuid.UUID) -> None:
        def due() -> None:
            self._lingering.pop(device_id, None)
            self._spawn(self._stop_stream(device_id, unless_watched=True))

        if device_id in self._streams and device_id not in self._lingering:
            self._lingering[device_id] = asyncio.get_running_loop().call_later(self.settings.linger_s, due)

    # --- viewers -------------------------------------------------------------------------------

    def _viewer_gone(self, viewer: Viewer, reason: str) -> None:
        self._spawn(self._drop(viewer, reason))

    async def _drop(self, viewer: Viewer, reason: str) -> None:
        if self._viewers.pop(viewer.id, None) is None and viewer.closed:
            return
        await viewer.close(reason)
        if not self._closed and not any(v.device_id == viewer.device_id for v in self._viewers.values()):
            self._linger_then_stop(viewer.device_id)

    async def _watch(self) -> None:
        s = self.settings
        while self._viewers:
            await asyncio.sleep(s.lease_check_s)
            viewers = list(self._viewers.values())
            try:
                leases = await self.access.current_leases(list({v.device_id for v in viewers}))
                revoked = await self.access.revoked(
                    {v.principal.key_id for v in viewers if v.share_link_id is None}
                )
                shares_over = await self.access.shares_over(
                    {v.share_link_id for v in viewers if v.share_link_id}
                )
                states: dict[uuid.UUID | None, ControlState] = {}
                for lease_id in {v.admission.lease_id for v in viewers if v.control is not None}:
                    states[lease_id] = await self.access.control_state(lease_id)
            except Exception as exc:  # a database hiccup must not kill the watcher; try next round
                logger.warning("live lease check failed", extra={"error": str(exc)})
                continue
            await self._report_activity(viewers)
            now = time.monotonic()
            for viewer in viewers:
                if viewer.closed:
                    continue
                if leases.get(viewer.device_id) != viewer.admission.lease_id:
                    await self._drop(viewer, "lease ended")
                elif viewer.share_link_id is None and viewer.principal.key_id in revoked:
                    await self._drop(viewer, "API key revoked")
                elif viewer.share_link_id is not None and viewer.share_link_id in shares_over:
                    await self._drop(viewer, "share link revoked or expired")
                elif not viewer.connected and now - viewer.created_at > s.connect_timeout_s:
                    await self._drop(viewer, "never connected")
                elif now - viewer.last_activity > s.idle_timeout_s:
                    await self._drop(viewer, "idle")
                elif viewer.admission.lease_id in states:
                    viewer.update_control(states[viewer.admission.lease_id])

    async def _report_activity(self, viewers: list[Viewer]) -> None:
        if self.session_activity is None:
            return
        active: set[tuple[uuid.UUID, uuid.UUID]] = set()
        for viewer in viewers:
            if viewer.target.kind == "session" and viewer.last_activity > viewer.reported_activity:
                viewer.reported_activity = viewer.last_activity
                active.add((viewer.principal.tenant_id, viewer.target.id))
        for tenant_id, session_id in active:
            try:
                await self.session_activity(tenant_id, session_id)
            except Exception as exc:  # the session lives on to its own expiry; the view goes on
                logger.warning("live session activity not recorded", extra={"error": str(exc)})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
