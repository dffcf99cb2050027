"""One viewer: an aiortc peer connection that sends a phone's video and reads its ``control`` channel.

Signalling is one request: the browser's complete offer (ICE candidates gathered, no trickle) in,
the complete answer out. The answer sends H.264 only — the phone's own encoding, packetised as it
comes (``track.py``) — so the offer must carry a video section that can receive H.264. A picture-loss
report (RTCP PLI/FIR) from this viewer asks the phone's stream for a keyframe: aiortc ignores them
for pre-encoded packets, so the sender's hook is pointed at the stream.

Once answered, the viewer lives until ``close()``: the hub closes it when its lease ends, it sits
idle, it never connects, the API shuts down, or the connection fails or is closed by the browser
(``connectionState`` failed/closed; ICE consent checks notice a vanished tab within ~30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from device_pool.driver import AdbDevice
from orchestrator.errors import InvalidSdp
from orchestrator.live.access import Admission, ControlState, LiveAccess, LiveTarget
from orchestrator.live.input_channel import InputChannel, InputRecorder
from orchestrator.live.stream import PhoneStream
from orchestrator.services.auth import Principal

__all__ = ["CONTROL_LABEL", "Viewer"]

logger = logging.getLogger(__name__)

CONTROL_LABEL = "control"


class Viewer:
    def __init__(
        self,
        principal: Principal,
        target: LiveTarget,
        admission: Admission,
        stream: PhoneStream,
        phone: AdbDevice,
        access: LiveAccess,
        configuration: RTCConfiguration,
        on_gone: Callable[[Viewer, str], None],
        recorder_for: Callable[[ControlState], InputRecorder | None] = lambda state: None,
        share_link_id: uuid.UUID | None = None,
        view_only: bool = False,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.principal = principal
        self.target = target
        self.admission = admission
        self.stream = stream
        self.phone = phone
        self.access = access
        self._on_gone = on_gone
        # Let in by a share link (no API key): closed when the link is revoked or expires.
        self.share_link_id = share_link_id
        # A view link's viewer: every input is refused here, whatever the phone's holder allows.
        self.view_only = view_only
        self.created_at = self.last_activity = self.reported_activity = time.monotonic()
        self.connected = False
        self.closed = False
        self.control: InputChannel | None = None
        self.in_control: bool | None = None  # last told to the viewer
        self.control_state: ControlState | None = None  # as the last input's check read it
        self._recorder_for = recorder_for
        self._tasks: set[asyncio.Task[None]] = set()
        self.pc = RTCPeerConnection(configuration)
        self.track = stream.new_track()
        self.pc.on("datachannel", self._datachannel)
        self.pc.on("connectionstatechange", self._state_changed)

    @property
    def device_id(self) -> uuid.UUID:
        return self.admission.device_id

    async def answer(self, offer_sdp: str) -> str:
        """The answer to the browser's offer (ICE gathered); raises ``InvalidSdp``."""
        if "h264/90000" not in offer_sdp.lower():
            raise InvalidSdp("the offer has no H.264 video codec; the phone's stream is H.264")
        # The transceiver exists before the offer is applied, so the offer's first video section
        # takes it and negotiates H.264 only (aiortc picks codecs while applying the offer).
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")])
        # aiortc would only flag "encode a keyframe next" for a PLI/FIR, which packets ignore.
        transceiver.sender._send_keyframe = self.stream.request_keyframe  # type: ignore[method-assign]
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc's SDP parser raises assorted errors for malformed input
            raise InvalidSdp(f"the offer is not a usable SDP offer: {type(exc).__name__}: {exc}") from None
        if transceiver.mid is None:
            raise InvalidSdp("the offer has no video section; add a recvonly video transceiver")
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        if "h264/90000" not in self.pc.localDescription.sdp.lower():
            raise InvalidSdp("no H.264 profile in the offer that this server can send")
        return self.pc.localDescription.sdp

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    async def may_control(self) -> tuple[bool, str]:
        state = await self.access.control_state(self.admission.lease_id)
        self.control_state = state
        return self._allows(state)

    def _allows(self, state: ControlState) -> tuple[bool, str]:
        if self.view_only:
            return False, "view only: this share link can only watch"
        return state.allows(self.principal)

    def recorder(self) -> InputRecorder | None:
        """Who records the input just allowed (a task's person-made steps), if anyone."""
        return None if self.control_state is None else self._recorder_for(self.control_state)

    def tell(self, payload: dict[str, Any]) -> None:
        """A server message on the ``control`` channel (dropped if the viewer has none open)."""
        if self.control is not None:
            self.control.send(payload)

    def update_control(self, state: ControlState) -> None:
        """Tell the viewer when it gains or loses control (the hub calls this each lease check)."""
        allowed, why = self._allows(state)
        if self.control is not None and allowed != self.in_control:
            self.in_control = allowed
            self.tell({"type": "control", "control": allowed, "reason": why or None})

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.tell({"type": "bye", "reason": reason})
        for task in list(self._tasks):
            task.cancel()
        if self.control is not None:
            await self.control.close()
        self.track.stop()
        with contextlib.suppress(Exception):  # closing a half-negotiated peer may complain
            await self.pc.close()
        logger.info("live viewer closed", extra={"device_id": str(self.device_id), "reason": reason})

    # --- aiortc events ---------------------------------------------------------------------------

    def _datachannel(self, channel: Any) -> None:
        if channel.label != CONTROL_LABEL or self.control is not None or self.closed:
            return
        self.control = InputChannel(
            channel, self.phone, self.stream.geometry, self.may_control, on_activity=self.touch,
            recorder=self.recorder,
        )  # fmt: skip

        async def hello() -> None:
            allowed, why = await self.may_control()
            self.in_control = allowed
            geometry = self.stream.geometry.as_json()
            self.tell({"type": "hello", "viewer_id": self.id, "control": allowed, "reason": why or None, **geometry})

        if channel.readyState == "open":
            self._spawn(hello())
        else:
            channel.on("open", lambda: self._spawn(hello()))

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.connected = True
        elif state in ("failed", "closed") and not self.closed:
            self._on_gone(self, f"connection {state}")

    def _spawn(self, coro: Any) -> None:
        # Keep a reference until done (the loop holds tasks weakly); errors are logged, not raised.
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("live viewer task failed", exc_info=task.exception())
