"""Live view routes: WebRTC signalling for a phone, directly or through a task or a session.

One request per viewer: ``POST …/webrtc`` with the browser's complete offer (wait for ICE gathering
to finish; no trickle) answers the complete answer. The video is H.264; input goes on a data
channel labelled ``control`` (protocol in ``orchestrator/live/input_channel.py`` and docs/live-view.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.api.deps import CurrentPrincipal
from orchestrator.api.schemas import ErrorOut
from orchestrator.live import LiveAnswer, LiveHub, LiveTarget, TargetKind

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such device, task or session (or not yours)"},
    409: {"model": ErrorOut, "description": "The task or session holds no phone right now"},
    422: {"model": ErrorOut, "description": "Invalid body or SDP offer (no H.264 video section)"},
    502: {"model": ErrorOut, "description": "The phone cannot stream (offline, refused)"},
    503: {"model": ErrorOut, "description": "The phone has its maximum number of viewers"},
}

router = APIRouter(prefix="/api/v1", tags=["live"], responses=_ERRORS)

_OFFER_EXAMPLE = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n…a=rtpmap:102 H264/90000\r\n…"


class WebRtcOfferIn(BaseModel):
    """The browser's offer, ICE candidates included (``pc.localDescription`` after gathering)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"type": "offer", "sdp": _OFFER_EXAMPLE}]}
    )

    type: Literal["offer"]
    sdp: str = Field(min_length=1, max_length=100_000)

    @field_validator("sdp")
    @classmethod
    def _plain(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        value.encode("utf-8")  # a lone surrogate is refused (422), not a 500 later
        return value


class WebRtcAnswerOut(BaseModel):
    """The answer, plus where the screen sits in the video (for mapping clicks to 0–1 points)."""

    type: Literal["answer"] = "answer"
    sdp: str
    viewer_id: str
    device_id: uuid.UUID
    screen: dict[str, int] = Field(description="The phone's screen in pixels: width, height.")
    video: dict[str, int] = Field(description="The video's size: width, height.")
    content: dict[str, int] = Field(description="The screen inside the video: x, y, width, height.")

    @classmethod
    def of(cls, answer: LiveAnswer) -> WebRtcAnswerOut:
        return cls(sdp=answer.sdp, viewer_id=answer.viewer_id, device_id=answer.device_id,
                   **answer.geometry.as_json())  # type: ignore[arg-type]  # fmt: skip


class WebRtcConfigOut(BaseModel):
    """What a browser needs before it makes its offer."""

    ice_servers: list[dict[str, Any]] = Field(description="For `new RTCPeerConnection({iceServers})`.")
    control_label: str = "control"


def _hub(request: Request) -> LiveHub:
    return request.app.state.live


LiveHubDep = Annotated[LiveHub, Depends(_hub)]


async def _open(hub: LiveHub, principal: Any, kind: TargetKind, target_id: uuid.UUID, offer: WebRtcOfferIn) -> WebRtcAnswerOut:
    return WebRtcAnswerOut.of(await hub.open(principal, LiveTarget(kind, target_id), offer.sdp))


@router.post("/devices/{device_id}/webrtc", summary="Watch a device (WebRTC offer → answer)")
async def device_webrtc(
    device_id: uuid.UUID, offer: WebRtcOfferIn, principal: CurrentPrincipal, hub: LiveHubDep
) -> WebRtcAnswerOut:
    """A phone leased to your tenant (admins: any phone). Input on the `control` data channel is
    accepted only from whoever holds control of the task or session that has the phone."""
    return await _open(hub, principal, "device", device_id, offer)


@router.post("/tasks/{task_id}/webrtc", summary="Watch a task's phone (WebRTC offer → answer)")
async def task_webrtc(
    task_id: uuid.UUID, offer: WebRtcOfferIn, principal: CurrentPrincipal, hub: LiveHubDep
) -> WebRtcAnswerOut:
    """The phone the task holds now (409 `no_live_device` before it has one or after it ended).
    Input is accepted while the task is `waiting_for_user`, or `user_control` by the user who took over."""
    return await _open(hub, principal, "task", task_id, offer)


@router.post("/sessions/{session_id}/webrtc", summary="Watch a session's phone (WebRTC offer → answer)")
async def session_webrtc(
    session_id: uuid.UUID, offer: WebRtcOfferIn, principal: CurrentPrincipal, hub: LiveHubDep
) -> WebRtcAnswerOut:
    """The phone of an active session of your tenant; its user may send input."""
    return await _open(hub, principal, "session", session_id, offer)


@router.get("/webrtc/config", summary="ICE servers for the browser's peer connection")
async def webrtc_config(_principal: CurrentPrincipal, hub: LiveHubDep) -> WebRtcConfigOut:
    return WebRtcConfigOut(ice_servers=hub.ice_servers())
