"""Cutting a phone's raw H.264 into pictures: real x264 output, fed in arbitrary chunks."""

from __future__ import annotations

import random
from fractions import Fraction

import av
import numpy as np
import pytest

from orchestrator.live.h264 import PPS, SPS, AccessUnit, AccessUnits, NalSplitter, nal_type


def _encoded(frames: int, *, slices: int = 1, idr_every: int = 0) -> list[bytes]:
    """Annex B pictures of a moving picture, one ``bytes`` per picture, as x264 writes them."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 64, 64, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 30), Fraction(30, 1)
    codec.thread_count = 1
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1",
                     "x264-params": f"keyint=infinite:scenecut=0:slices={slices}"}  # fmt: skip
    codec.open()
    out = []
    rng = np.random.default_rng(1)
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        if idr_every and i and i % idr_every == 0:
            frame.pict_type = av.video.frame.PictureType.I
        out.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return out


def _cut(pictures: list[bytes], rng: random.Random, *, pause_after_each: bool) -> list[AccessUnit]:
    splitter, units = NalSplitter(), AccessUnits()
    done: list[AccessUnit] = []
    for picture in pictures:
        at = 0
        while at < len(picture):
            size = rng.randint(1, 700)
            for nal in splitter.feed(picture[at : at + size]):
                unit = units.push(nal)
                if unit:
                    done.append(unit)
            at += size
        if pause_after_each:  # the phone paused after writing a picture
            nal = splitter.flush()
            if nal and (unit := units.push(nal)):
                done.append(unit)
            if unit := units.flush():
                done.append(unit)
    return done


@pytest.mark.parametrize("slices", [1, 3])
@pytest.mark.parametrize("pause_after_each", [True, False])
def test_pictures_come_out_whole_however_the_bytes_are_chunked(slices: int, pause_after_each: bool) -> None:
    pictures = _encoded(12, slices=slices, idr_every=5)
    units = _cut(pictures, random.Random(slices), pause_after_each=pause_after_each)
    # Without pauses a picture is known complete only once the next one's first slice has come
    # whole: the last one or two wait for bytes that never come.
    assert len(units) >= len(pictures) - (0 if pause_after_each else 2)
    expected = pictures[: len(units)]
    assert [u.keyframe for u in units] == [i % 5 == 0 for i in range(len(expected))]
    decoder = av.CodecContext.create("h264", "r")
    decoded = 0
    for unit in units:
        decoded += len(decoder.decode(av.Packet(unit.data)))  # each unit is one whole picture
    assert decoded == len(expected)


def test_a_keyframe_without_parameter_sets_gets_the_last_ones() -> None:
    pictures = _encoded(6, idr_every=3)
    units = _cut(pictures, random.Random(0), pause_after_each=True)
    # x264 repeats SPS/PPS before each IDR; a phone's encoder may send them once. Remove them
    # from the second IDR: the assembler must put the remembered ones back.
    stripped = _strip_parameter_sets(pictures[3])
    assert stripped != pictures[3]
    again = _cut([*pictures[:3], stripped], random.Random(0), pause_after_each=True)
    assert again[3].keyframe and again[3].data == units[3].data


def test_bytes_after_a_premature_cut_are_dropped_and_reported() -> None:
    pictures = _encoded(3)
    splitter, units = NalSplitter(), AccessUnits()
    first = pictures[0]
    half = len(first) // 2
    for nal in splitter.feed(first[:half]):
        units.push(nal)
    assert splitter.flush() is not None  # a pause in the middle of a slice: cut too early
    assert not splitter.damaged
    assert splitter.feed(first[half:]) == []  # the rest has no start code: dropped
    assert splitter.damaged
    splitter.damaged = False
    nals = splitter.feed(pictures[1] + pictures[2][:4])
    assert nals and not splitter.damaged  # back in step at the next start code


def _strip_parameter_sets(picture: bytes) -> bytes:
    splitter = NalSplitter()
    nals = splitter.feed(picture)
    last = splitter.flush()
    nals += [last] if last else []
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals if nal_type(n) not in (SPS, PPS))
