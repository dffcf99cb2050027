"""Live view over WebRTC in the API process (docs/live-view.md).

    capture.py    one `screenrecord --output-format=h264 -` on the phone, read as pictures (h264.py)
    stream.py     one per phone: the capture, its pictures fanned out as shared packets
    track.py      one viewer's video track (a queue of those packets)
    viewer.py     one viewer's peer connection and its `control` data channel (input_channel.py)
    access.py     who may watch, who may touch (the database, at that moment)
    hub.py        the service: viewers in, streams started and stopped, leases watched
    relay.py      with Redis: one stream owner per phone captures, other API processes relay its pictures
    geometry.py   the screen inside the video; normalised points to pixels
    ice.py        STUN/TURN and ICE host addresses
    recorder.py   a task's or session's recording: a capture muxed into MP4 (used by the worker too)
"""

from orchestrator.live.access import Admission, ControlState, LiveAccess, LiveTarget, TargetKind
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.hub import LiveAnswer, LiveHub

__all__ = [
    "Admission",
    "ControlState",
    "LiveAccess",
    "LiveAnswer",
    "LiveHub",
    "LiveTarget",
    "TargetKind",
    "VideoGeometry",
]
