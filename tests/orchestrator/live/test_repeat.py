"""The last picture again (``repeat.py``): decoded by FFmpeg's H.264 decoder, as real encoders' output."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from orchestrator.live.h264 import SLICE, nal_type
from orchestrator.live.repeat import PictureRepeater

W, H = 96, 64  # 6 x 4 macroblocks


def _encoded(frames: int, params: str, preset: str = "ultrafast") -> list[tuple[bytes, bool]]:
    """(Annex B picture, keyframe) of a moving picture, as x264 writes them; an IDR at picture 4."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = W, H, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 30), Fraction(30, 1)
    codec.thread_count = 1
    codec.options = {"preset": preset, "tune": "zerolatency", "forced-idr": "1",
                     "x264-params": f"keyint=infinite:scenecut=0:bframes=0:{params}"}  # fmt: skip
    codec.open()
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    out = []
    for i in range(frames):
        picture = np.roll(base, 3 * i, axis=1)  # motion, so P pictures carry real residuals
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        if i == 4:
            frame.pict_type = av.video.frame.PictureType.I
        packets = codec.encode(frame)
        out.append((b"".join(bytes(p) for p in packets), any(p.is_keyframe for p in packets)))
    return out


def _decode(pictures: list[bytes]) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for data in pictures:
        frames += [f.to_ndarray(format="gray") for f in decoder.decode(av.Packet(data))]
    frames += [f.to_ndarray(format="gray") for f in decoder.decode(None)]
    return frames


@pytest.mark.parametrize(
    ("params", "preset"),
    [
        ("", "ultrafast"),  # Constrained Baseline, CAVLC: what the virtual phone sends
        ("cabac=0:weightp=1:8x8dct=1", "veryfast"),  # High profile SPS, weighted prediction, deblocking
    ],
)
@pytest.mark.parametrize("after", [0, 2, 4, 6])  # after an IDR, a P picture, the second IDR, a later P
def test_a_skipped_picture_repeats_the_last_one_and_disturbs_nothing_after_it(
    params: str, preset: str, after: int
) -> None:
    pictures = _encoded(8, params, preset)
    repeater = PictureRepeater()
    for data, keyframe in pictures[: after + 1]:
        repeater.observe(data, keyframe)
    repeated = repeater.repeat()
    assert repeated is not None
    data, keyframe = repeated
    assert not keyframe and nal_type(data[4:]) == SLICE and data[4] & 0x60 == 0  # non-reference P
    assert len(data) < 20  # a few bytes, whatever the picture

    plain = _decode([p for p, _ in pictures])
    with_repeat = _decode(
        [p for p, _ in pictures[: after + 1]] + [data] + [p for p, _ in pictures[after + 1 :]]
    )
    assert len(with_repeat) == len(plain) + 1
    # The repeat shows exactly the last picture, and every picture after it decodes as without it.
    assert np.array_equal(with_repeat[after + 1], plain[after])
    assert all(
        np.array_equal(a, b) for a, b in zip(with_repeat[after + 2 :], plain[after + 1 :], strict=True)
    )


def test_a_cabac_stream_repeats_its_idr_and_nothing_else() -> None:
    pictures = _encoded(6, "cabac=1", "veryfast")
    repeater = PictureRepeater()
    assert repeater.repeat() is None  # nothing seen yet
    repeater.observe(*pictures[0])
    assert repeater.repeat() == (pictures[0][0], True)  # an IDR decoded twice shows it twice
    repeater.observe(*pictures[1])
    assert repeater.repeat() is None  # a P picture cannot be repeated without a CABAC writer
    for data, keyframe in pictures[2:5]:
        repeater.observe(data, keyframe)
    assert repeater.repeat() == (pictures[4][0], True)
